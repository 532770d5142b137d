package dev.selma.engine.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** Writes safetensors files for tests, the way the reference implementation lays them out. */
final class SafetensorsFixture {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** One tensor: dtype name, shape outermost first, encoded bytes. */
  record Entry(String dtype, long[] shape, byte[] bytes) {}

  private SafetensorsFixture() {}

  /** Floats encoded as F32, F16 or BF16. */
  static Entry floats(String dtype, long[] shape, float[] values) {
    GgmlType type = GgmlType.valueOf(dtype);
    return new Entry(dtype, shape, Quants.quantize(type, values));
  }

  /** Writes the tensors in map order, data packed back to back, header padded with spaces to 8 bytes. */
  static Path write(Path file, Map<String, Entry> tensors, Map<String, String> metadata) throws IOException {
    ObjectNode header = JSON.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode m = header.putObject("__metadata__");
      metadata.forEach(m::put);
    }
    long offset = 0;
    ByteArrayOutputStream data = new ByteArrayOutputStream();
    for (Map.Entry<String, Entry> e : tensors.entrySet()) {
      ObjectNode t = header.putObject(e.getKey());
      t.put("dtype", e.getValue().dtype());
      var shape = t.putArray("shape");
      for (long d : e.getValue().shape()) {
        shape.add(d);
      }
      t.putArray("data_offsets").add(offset).add(offset + e.getValue().bytes().length);
      offset += e.getValue().bytes().length;
      data.writeBytes(e.getValue().bytes());
    }
    return writeRaw(file, JSON.writeValueAsString(header), data.toByteArray());
  }

  /** A file with exactly this header text (padded to 8 bytes) and data section. */
  static Path writeRaw(Path file, String headerJson, byte[] data) throws IOException {
    StringBuilder h = new StringBuilder(headerJson);
    while (h.toString().getBytes(StandardCharsets.UTF_8).length % 8 != 0) {
      h.append(' ');
    }
    byte[] headerBytes = h.toString().getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
    out.writeBytes(headerBytes);
    out.writeBytes(data);
    Files.write(file, out.toByteArray());
    return file;
  }
}
