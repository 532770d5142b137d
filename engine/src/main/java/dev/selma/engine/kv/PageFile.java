package dev.selma.engine.kv;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * The one reader and writer of page files, the disk tier's format. Version 1, little-endian:
 *
 * <pre>
 *   header   int    MAGIC ("SKVP")
 *            int    VERSION
 *            long   key.high, long key.low        the page's {@link PageKey}
 *            int    n, then n bytes               the page format (UTF-8), {@link PagedKvCache#pageFormat()}
 *            long   payload length in bytes
 *   payload  the page in host layout             {@link KvPage#download}
 *   footer   int    FOOTER_MAGIC (~MAGIC)
 *            int    CRC32C of header and payload
 * </pre>
 *
 * A file is written under a temporary name and renamed when complete, so a crash leaves no file
 * under a page's name that was not wholly written. Reading checks every field against what the
 * caller expects (key, format, length) and the checksum over everything; any difference throws
 * {@link CorruptPageException}, and the caller drops the file rather than use it.
 */
public final class PageFile {
  static final int MAGIC = 0x50564B53; // "SKVP" read as little-endian bytes
  static final int FOOTER_MAGIC = ~MAGIC;
  static final int VERSION = 1;
  static final String SUFFIX = ".kvpage";
  private static final int FOOTER_BYTES = 8;

  private PageFile() {}

  /** Thrown when a page file is not exactly the page that was asked for. */
  public static final class CorruptPageException extends IOException {
    CorruptPageException(Path file, String problem) {
      super("corrupt KV page file " + file + ": " + problem);
    }
  }

  /** The file name of {@code key}'s page in a disk tier folder. */
  static Path path(Path folder, PageKey key) {
    return folder.resolve(key.hex() + SUFFIX);
  }

  /** The key a page file's name holds, or null if it is not a page file's name. */
  static PageKey keyOf(Path file) {
    String name = file.getFileName().toString();
    return name.endsWith(SUFFIX) ? PageKey.parseHex(name.substring(0, name.length() - SUFFIX.length())) : null;
  }

  private static ByteBuffer header(PageKey key, String format, long payloadBytes) {
    byte[] f = format.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(4 + 4 + 16 + 4 + f.length + 8).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(MAGIC).putInt(VERSION).putLong(key.high()).putLong(key.low()).putInt(f.length).put(f).putLong(payloadBytes);
    return b.flip();
  }

  /**
   * Writes {@code key}'s page to {@code file}, replacing any file there.
   *
   * @return the file's size in bytes
   */
  public static long write(Path file, PageKey key, String format, MemorySegment payload) throws IOException {
    ByteBuffer header = header(key, format, payload.byteSize());
    ByteBuffer body = payload.asByteBuffer();
    CRC32C crc = new CRC32C();
    crc.update(header.duplicate());
    crc.update(body.duplicate());
    ByteBuffer footer = ByteBuffer.allocate(FOOTER_BYTES).order(ByteOrder.LITTLE_ENDIAN)
        .putInt(FOOTER_MAGIC).putInt((int) crc.getValue()).flip();
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer[] all = {header, body, footer};
      while (footer.hasRemaining()) {
        ch.write(all);
      }
    }
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    return header.limit() + payload.byteSize() + FOOTER_BYTES;
  }

  /**
   * Reads the payload of {@code key}'s page from {@code file} into memory of {@code arena}.
   *
   * @throws CorruptPageException if anything in the file differs from what is expected
   */
  public static MemorySegment read(Path file, PageKey key, String format, long payloadBytes, Arena arena)
      throws IOException {
    ByteBuffer expected = header(key, format, payloadBytes);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size(), want = expected.limit() + payloadBytes + FOOTER_BYTES;
      if (size != want) {
        throw new CorruptPageException(file, "size " + size + ", expected " + want);
      }
      ByteBuffer header = ByteBuffer.allocate(expected.limit()).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, header, file);
      header.flip();
      if (header.getInt(0) != MAGIC) {
        throw new CorruptPageException(file, "not a page file (bad magic)");
      }
      if (header.getInt(4) != VERSION) {
        throw new CorruptPageException(file, "format version " + header.getInt(4) + ", this build reads " + VERSION);
      }
      if (!header.equals(expected)) {
        throw new CorruptPageException(file, "header does not match key " + key.hex() + ", format " + format
            + " and " + payloadBytes + " bytes");
      }
      MemorySegment payload = arena.allocate(payloadBytes, 64);
      ByteBuffer body = payload.asByteBuffer();
      readFully(ch, body, file);
      ByteBuffer footer = ByteBuffer.allocate(FOOTER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, footer, file);
      CRC32C crc = new CRC32C();
      crc.update(header.rewind());
      crc.update(body.rewind());
      if (footer.getInt(0) != FOOTER_MAGIC || footer.getInt(4) != (int) crc.getValue()) {
        throw new CorruptPageException(file, "checksum mismatch");
      }
      return payload;
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer dst, Path file) throws IOException {
    while (dst.hasRemaining()) {
      if (ch.read(dst) < 0) {
        throw new CorruptPageException(file, "truncated");
      }
    }
  }
}
