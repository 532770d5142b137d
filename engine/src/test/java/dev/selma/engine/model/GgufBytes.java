package dev.selma.engine.model;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Builds GGUF bytes field by field, so that tests can write files the writer would refuse to. */
final class GgufBytes {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  /** Magic, version and the two counts. */
  static GgufBytes header(int version, long tensorCount, long kvCount) {
    return new GgufBytes().u32(GgufFile.MAGIC).u32(version).u64(tensorCount).u64(kvCount);
  }

  GgufBytes u8(int v) {
    out.write(v);
    return this;
  }

  GgufBytes u32(long v) {
    return bytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
  }

  GgufBytes u64(long v) {
    return bytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
  }

  GgufBytes f32(float v) {
    return u32(Float.floatToRawIntBits(v));
  }

  GgufBytes str(String s) {
    return str(s.getBytes(StandardCharsets.UTF_8));
  }

  GgufBytes str(byte[] utf8) {
    return u64(utf8.length).bytes(utf8);
  }

  GgufBytes bytes(byte[] b) {
    out.writeBytes(b);
    return this;
  }

  /** A metadata entry with a uint32 value. */
  GgufBytes kvU32(String key, long value) {
    return str(key).u32(GgufMetadata.ValueType.UINT32.id).u32(value);
  }

  /** A tensor info; {@code ne} innermost first, as the file lists them. */
  GgufBytes tensorInfo(String name, int typeId, long offset, long... ne) {
    str(name).u32(ne.length);
    for (long d : ne) {
      u64(d);
    }
    return u32(typeId).u64(offset);
  }

  GgufBytes padTo(int alignment) {
    while (out.size() % alignment != 0) {
      out.write(0);
    }
    return this;
  }

  GgufBytes zeros(int n) {
    return bytes(new byte[n]);
  }

  int size() {
    return out.size();
  }

  byte[] toByteArray() {
    return out.toByteArray();
  }

  Path write(Path file) throws IOException {
    Files.write(file, out.toByteArray());
    return file;
  }
}
