package dev.selma.engine.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PageFileTest {
  private static final PageKey KEY = PageKey.root("test").child(new int[] {1, 2, 3}, 0, 3);
  private static final String FORMAT = "test-format v1";

  @TempDir Path dir;

  private static MemorySegment payload(Arena arena, int n) {
    MemorySegment s = arena.allocate(n);
    for (int i = 0; i < n; i++) {
      s.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + 7));
    }
    return s;
  }

  @Test
  void roundTrip() throws IOException {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment data = payload(arena, 1000);
      Path file = PageFile.path(dir, KEY);
      long size = PageFile.write(file, KEY, FORMAT, data);
      assertEquals(Files.size(file), size);
      assertEquals(KEY, PageFile.keyOf(file));
      MemorySegment back = PageFile.read(file, KEY, FORMAT, 1000, arena);
      assertEquals(-1, back.mismatch(data));
      assertTrue(Files.notExists(file.resolveSibling(file.getFileName() + ".tmp")), "temporary file renamed");
    }
  }

  @Test
  void everySingleBitFlipIsDetected() throws IOException {
    try (Arena arena = Arena.ofConfined()) {
      Path file = PageFile.path(dir, KEY);
      PageFile.write(file, KEY, FORMAT, payload(arena, 64));
      byte[] good = Files.readAllBytes(file);
      for (int at = 0; at < good.length; at++) {
        byte[] bad = good.clone();
        bad[at] ^= 1 << (at % 8);
        Files.write(file, bad);
        int where = at;
        assertThrows(PageFile.CorruptPageException.class, () -> PageFile.read(file, KEY, FORMAT, 64, arena),
            "flipped byte " + where);
      }
    }
  }

  @Test
  void aFileIsOnlyTheRequestedPage() throws IOException {
    try (Arena arena = Arena.ofConfined()) {
      Path file = PageFile.path(dir, KEY);
      PageFile.write(file, KEY, FORMAT, payload(arena, 64));
      PageKey other = PageKey.root("test").child(new int[] {1, 2, 4}, 0, 3);
      assertMessage("does not match", () -> PageFile.read(file, other, FORMAT, 64, arena));
      assertMessage("does not match", () -> PageFile.read(file, KEY, "test-format v2", 64, arena));
      assertMessage("size", () -> PageFile.read(file, KEY, "test-format v10", 64, arena));
      assertMessage("size", () -> PageFile.read(file, KEY, FORMAT, 128, arena));
      byte[] good = Files.readAllBytes(file);
      Files.write(file, Arrays.copyOf(good, good.length - 1));
      assertMessage("size", () -> PageFile.read(file, KEY, FORMAT, 64, arena));
      byte[] version = good.clone();
      version[4] = 2;
      Files.write(file, version);
      assertMessage("format version 2", () -> PageFile.read(file, KEY, FORMAT, 64, arena));
    }
  }

  private interface Read {
    void run() throws IOException;
  }

  private static void assertMessage(String expected, Read read) {
    PageFile.CorruptPageException e = assertThrows(PageFile.CorruptPageException.class, read::run);
    assertTrue(e.getMessage().contains(expected), e.getMessage());
  }

  @Test
  void keysAreChainedAndNamed() {
    int[] tokens = {5, 6, 7, 8};
    PageKey root = PageKey.root("model\nformat\ndense");
    assertEquals(root.child(tokens, 0, 2), root.child(new int[] {5, 6}, 0, 2));
    assertTrue(!root.child(tokens, 0, 2).equals(root.child(tokens, 2, 2)), "tokens matter");
    assertTrue(!root.child(tokens, 0, 2).equals(PageKey.root("model\nformat\nother").child(tokens, 0, 2)),
        "the namespace matters");
    PageKey k = root.child(tokens, 0, 4);
    assertEquals(k, PageKey.parseHex(k.hex()));
    assertEquals(null, PageKey.parseHex("xyz"));
  }
}
