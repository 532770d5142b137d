package dev.selma.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufFileTest {
  @TempDir Path dir;

  /** One value of every type, arrays of every element type, empty arrays and arrays of arrays. */
  static Map<String, Value> everyValueType() {
    Map<String, Value> m = new LinkedHashMap<>();
    m.put("general.architecture", scalar(ValueType.STRING, "llama"));
    m.put("t.uint8", scalar(ValueType.UINT8, 255L));
    m.put("t.int8", scalar(ValueType.INT8, -128L));
    m.put("t.uint16", scalar(ValueType.UINT16, 65535L));
    m.put("t.int16", scalar(ValueType.INT16, -32768L));
    m.put("t.uint32", scalar(ValueType.UINT32, 4294967295L));
    m.put("t.int32", scalar(ValueType.INT32, (long) Integer.MIN_VALUE));
    m.put("t.uint64", scalar(ValueType.UINT64, Long.MAX_VALUE));
    m.put("t.int64", scalar(ValueType.INT64, Long.MIN_VALUE));
    m.put("t.float32", scalar(ValueType.FLOAT32, (double) 1.1f));
    m.put("t.float64", scalar(ValueType.FLOAT64, Math.PI));
    m.put("t.bool", scalar(ValueType.BOOL, true));
    m.put("t.string", scalar(ValueType.STRING, "héllo ✓ \uD83D\uDE00"));
    m.put("t.empty_string", scalar(ValueType.STRING, ""));
    m.put("a.uint8", array(ValueType.UINT8, new long[] {0, 1, 255}));
    m.put("a.int8", array(ValueType.INT8, new long[] {-128, 127}));
    m.put("a.uint16", array(ValueType.UINT16, new long[] {7, 65535}));
    m.put("a.int16", array(ValueType.INT16, new long[] {-1}));
    m.put("a.uint32", array(ValueType.UINT32, new long[] {4294967295L}));
    m.put("a.int32", array(ValueType.INT32, new long[] {1, -2, 3}));
    m.put("a.uint64", array(ValueType.UINT64, new long[] {Long.MAX_VALUE, 0}));
    m.put("a.int64", array(ValueType.INT64, new long[] {Long.MIN_VALUE}));
    m.put("a.float32", array(ValueType.FLOAT32, new double[] {0.5, -0.25, (double) 0.1f}));
    m.put("a.float64", array(ValueType.FLOAT64, new double[] {Math.E, -0.0}));
    m.put("a.bool", array(ValueType.BOOL, new boolean[] {true, false, true}));
    m.put("a.string", array(ValueType.STRING, new String[] {"a", "", "ü"}));
    m.put("a.empty", array(ValueType.INT32, new long[0]));
    m.put("a.arrays", array(ValueType.ARRAY, new Value[] {
        array(ValueType.STRING, new String[] {"x", "y"}),
        array(ValueType.INT32, new long[] {5}),
        array(ValueType.ARRAY, new Value[] {array(ValueType.FLOAT64, new double[] {1.5})})}));
    return m;
  }

  static Value scalar(ValueType type, Object value) {
    return new Value(type, type, value);
  }

  static Value array(ValueType elementType, Object values) {
    return new Value(ValueType.ARRAY, elementType, values);
  }

  static float[] randomFloats(Random random, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) random.nextGaussian();
    }
    return x;
  }

  /** A small file with every metadata type and one tensor of every type (several shapes). */
  static Path writeSample(Path file) throws IOException {
    Random random = new Random(7);
    GgufWriter w = new GgufWriter().putAll(everyValueType());
    for (GgmlType type : GgmlType.values()) {
      int cols = type.blockSize == 1 ? 8 : type.blockSize;
      w.addTensor("t." + type.name().toLowerCase(), type, new long[] {3, cols}, randomFloats(random, 3 * cols));
    }
    w.addTensor("t.3d", GgmlType.F16, new long[] {2, 3, 4}, randomFloats(random, 24));
    w.addTensor("t.1d", GgmlType.F32, new long[] {5}, randomFloats(random, 5));
    w.write(file);
    return file;
  }

  static void assertValueEquals(String key, Value expected, Value actual) {
    assertEquals(expected.type(), actual.type(), key);
    assertEquals(expected.elementType(), actual.elementType(), key);
    switch (expected.value()) {
      case long[] a -> assertArrayEquals(a, (long[]) actual.value(), key);
      case double[] a -> assertArrayEquals(a, (double[]) actual.value(), key);
      case boolean[] a -> assertArrayEquals(a, (boolean[]) actual.value(), key);
      case String[] a -> assertArrayEquals(a, (String[]) actual.value(), key);
      case Value[] a -> {
        Value[] b = (Value[]) actual.value();
        assertEquals(a.length, b.length, key);
        for (int i = 0; i < a.length; i++) {
          assertValueEquals(key + "[" + i + "]", a[i], b[i]);
        }
      }
      default -> assertEquals(expected.value(), actual.value(), key);
    }
  }

  @Test
  void everyMetadataTypeRoundTrips() throws IOException {
    Map<String, Value> values = everyValueType();
    Path file = dir.resolve("meta.gguf");
    new GgufWriter().putAll(values).write(file);
    try (GgufFile gguf = GgufFile.open(file)) {
      assertEquals(3, gguf.version());
      assertEquals(List.copyOf(values.keySet()), List.copyOf(gguf.metadata().keys()), "file order is kept");
      values.forEach((k, v) -> assertValueEquals(k, v, gguf.metadata().get(k)));
      assertEquals("llama", gguf.metadata().getString("general.architecture"));
      assertTrue(gguf.tensors().isEmpty());
    }
  }

  @Test
  void everyTensorTypeRoundTripsAndShapesAreOutermostFirst() throws IOException {
    Random random = new Random(1);
    Path file = dir.resolve("tensors.gguf");
    Map<GgmlType, float[]> data = new LinkedHashMap<>();
    GgufWriter w = new GgufWriter();
    for (GgmlType type : GgmlType.values()) {
      float[] x = randomFloats(random, 2 * 3 * 256);
      data.put(type, x);
      w.addTensor(type.name(), type, new long[] {2, 3, 256}, x);
    }
    w.write(file);
    try (GgufFile gguf = GgufFile.open(file)) {
      assertEquals(List.copyOf(data.keySet().stream().map(Enum::name).toList()), List.copyOf(gguf.tensors().keySet()));
      for (GgmlType type : GgmlType.values()) {
        Tensor t = gguf.tensor(type.name());
        assertEquals(type, t.type());
        assertArrayEquals(new long[] {2, 3, 256}, t.shape());
        assertArrayEquals(Quants.quantize(type, data.get(type)), t.data().toArray(ValueLayout.JAVA_BYTE),
            type + " bytes are the quantizer's");
        float[] row = Quants.dequantizeRow(t, 5);
        float[] expected = Arrays.copyOfRange(data.get(type), 5 * 256, 6 * 256);
        for (int i = 0; i < 256; i++) {
          assertEquals(expected[i], row[i], QuantsTest.tolerance(type, 6f), type + " element " + i);
        }
      }
    }
  }

  @Test
  void writesHeaderExactlyAsSpecified() throws IOException {
    Path file = dir.resolve("exact.gguf");
    new GgufWriter().putUint32("a.b", 7).addTensor("w", GgmlType.F32, new long[] {2, 3}, new float[6]).write(file);
    byte[] expected = GgufBytes.header(3, 1, 1).kvU32("a.b", 7)
        .tensorInfo("w", 0, 0, 3, 2).padTo(32).zeros(24).padTo(32).toByteArray();
    assertArrayEquals(expected, Files.readAllBytes(file));
  }

  @Test
  void readsVersion2Files() throws IOException {
    Path file = dir.resolve("v2.gguf");
    new GgufWriter().version(2).putString("general.architecture", "llama")
        .addTensor("w", GgmlType.Q8_0, new long[] {1, 32}, new float[32]).write(file);
    try (GgufFile gguf = GgufFile.open(file)) {
      assertEquals(2, gguf.version());
      assertEquals(GgmlType.Q8_0, gguf.tensor("w").type());
    }
  }

  @Test
  void honoursGeneralAlignment() throws IOException {
    for (int alignment : new int[] {1, 8, 64, 4096}) {
      Path file = dir.resolve("align" + alignment + ".gguf");
      new GgufWriter().alignment(alignment)
          .addTensor("a", GgmlType.F32, new long[] {3}, new float[] {1, 2, 3})
          .addTensor("b", GgmlType.F16, new long[] {5}, new float[] {4, 5, 6, 7, 8}).write(file);
      try (GgufFile gguf = GgufFile.open(file)) {
        assertEquals(alignment, gguf.alignment());
        assertEquals(0, gguf.dataOffset() % alignment);
        assertArrayEquals(new float[] {4, 5, 6, 7, 8}, Quants.dequantize(gguf.tensor("b")));
        long offsetOfB = gguf.tensor("b").data().address() - gguf.tensor("a").data().address();
        assertEquals(GgufFile.alignUp(12, alignment), offsetOfB);
      }
    }
  }

  @Test
  void tensorDataIsInaccessibleAfterClose() throws IOException {
    Path file = dir.resolve("close.gguf");
    new GgufWriter().addTensor("w", GgmlType.F32, new long[] {2}, new float[] {1, 2}).write(file);
    Tensor w;
    try (GgufFile gguf = GgufFile.open(file)) {
      w = gguf.tensor("w");
      assertEquals(2f, Quants.dequantize(w)[1]);
      ModelFormatException e = assertThrows(ModelFormatException.class, () -> gguf.tensor("nope"));
      assertEquals(file + ": tensor 'nope': missing tensor", e.getMessage());
    }
    assertThrows(IllegalStateException.class, () -> Quants.dequantize(w));
  }

  /**
   * A 2.5 GB sparse file whose second tensor lies beyond 2 GiB: offsets and slices are 64-bit. Only
   * the few bytes written are stored on disk.
   */
  @Test
  void mapsTensorsBeyondTwoGigabytes() throws IOException {
    long padElements = 600_000_000L; // 2.4 GB of F32
    GgufBytes header = GgufBytes.header(3, 2, 0)
        .tensorInfo("pad", GgmlType.F32.ggufId, 0, padElements)
        .tensorInfo("far", GgmlType.F32.ggufId, padElements * 4, 4)
        .padTo(32);
    Path file = header.write(dir.resolve("big.gguf"));
    long farAt = header.size() + padElements * 4;
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.setLength(farAt + 16);
      raf.seek(farAt);
      for (float f : new float[] {1.5f, -2f, 3.25f, 1e30f}) {
        raf.writeInt(Integer.reverseBytes(Float.floatToRawIntBits(f)));
      }
    }
    try (GgufFile gguf = GgufFile.open(file)) {
      assertTrue(farAt > Integer.MAX_VALUE);
      assertEquals(padElements * 4, gguf.tensor("pad").data().byteSize());
      assertArrayEquals(new float[] {1.5f, -2f, 3.25f, 1e30f}, Quants.dequantize(gguf.tensor("far")));
      assertEquals(0f, gguf.tensor("pad").data().get(ValueLayout.JAVA_FLOAT_UNALIGNED, padElements * 4 - 4));
    }
  }

  // ---- malformed files --------------------------------------------------------------------------

  private ModelFormatException rejects(GgufBytes bytes) throws IOException {
    Path file = bytes.write(dir.resolve("bad.gguf"));
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufFile.open(file).close());
    assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
    return e;
  }

  private void rejects(GgufBytes bytes, String expectedMessageSuffix) throws IOException {
    String message = rejects(bytes).getMessage();
    assertTrue(message.endsWith(expectedMessageSuffix), message);
  }

  @Test
  void rejectsWhatIsNotGguf() throws IOException {
    rejects(new GgufBytes(), "header: not a GGUF file (magic bytes \"GGUF\" missing)");
    rejects(new GgufBytes().bytes("GGML1234".getBytes()), "not a GGUF file (magic bytes \"GGUF\" missing)");
    rejects(new GgufBytes().u32(GgufFile.MAGIC).u8(3), "version: file truncated at offset 4 (4 more bytes needed, file size 5)");
  }

  @Test
  void rejectsVersion1BigEndianAndFutureVersions() throws IOException {
    assertTrue(rejects(GgufBytes.header(1, 0, 0)).getMessage().contains("version: GGUF version 1 is obsolete"));
    rejects(GgufBytes.header(Integer.reverseBytes(3), 0, 0), "version: big-endian GGUF files are not supported");
    rejects(GgufBytes.header(4, 0, 0), "version: unsupported GGUF version 4 (versions 2 and 3 are read)");
  }

  @Test
  void boundsCountsAndLengthsByTheFileSizeBeforeAllocating() throws IOException {
    rejects(GgufBytes.header(3, 0, 1L << 60), "metadata count: count 1152921504606846976 cannot fit in the "
        + "remaining 0 bytes of the file");
    rejects(GgufBytes.header(3, 1L << 60, 0), "tensor count: count 1152921504606846976 cannot fit in the "
        + "remaining 0 bytes of the file");
    rejects(GgufBytes.header(3, 0, 1).u64(-1L).zeros(20), "metadata key #0: string length 18446744073709551615 "
        + "exceeds the remaining 20 bytes of the file");
    rejects(GgufBytes.header(3, 0, 1).str("k").u32(ValueType.ARRAY.id).u32(ValueType.UINT8.id).u64(1L << 40),
        "k: count 1099511627776 cannot fit in the remaining 0 bytes of the file");
    rejects(GgufBytes.header(3, 0, 1).str("k").u32(ValueType.ARRAY.id).u32(ValueType.STRING.id).u64(3)
        .zeros(20), "k: count 3 cannot fit in the remaining 20 bytes of the file");
  }

  @Test
  void rejectsBadMetadata() throws IOException {
    rejects(GgufBytes.header(3, 0, 1).str(new byte[] {'a', (byte) 0xC3}).u32(4).u32(1), "metadata key #0: string is not valid UTF-8");
    rejects(GgufBytes.header(3, 0, 1).str("").u32(4).u32(1), "metadata key #0: empty key");
    rejects(GgufBytes.header(3, 0, 2).kvU32("k", 1).kvU32("k", 2), "k: duplicate metadata key");
    rejects(GgufBytes.header(3, 0, 1).str("k").u32(13).u32(0), "k: unknown value type 13");
    rejects(GgufBytes.header(3, 0, 1).str("k").u32(ValueType.ARRAY.id).u32(99).u64(0), "k: unknown array element type 99");
    rejects(GgufBytes.header(3, 0, 1).str("k").u32(ValueType.BOOL.id).u8(2), "k: bool value 2 (must be 0 or 1)");
    rejects(GgufBytes.header(3, 0, 1).str("k").u32(ValueType.UINT64.id).u64(-1), "k: uint64 value 18446744073709551615 exceeds 2^63 - 1");
    rejects(GgufBytes.header(3, 0, 1).str("k").u32(ValueType.UINT32.id).u8(0), "k: file truncated at offset 37 (4 more bytes needed, file size 38)");
    GgufBytes deep = GgufBytes.header(3, 0, 1).str("k").u32(ValueType.ARRAY.id);
    for (int i = 0; i < 20; i++) {
      deep.u32(ValueType.ARRAY.id).u64(1);
    }
    rejects(deep.zeros(100), "k: arrays nested deeper than 8");
    rejects(GgufBytes.header(3, 0, 1).kvU32("general.alignment", 48), "general.alignment: alignment 48 is not a power of two between 1 and 2^30");
    rejects(GgufBytes.header(3, 0, 1).str("general.alignment").u32(ValueType.STRING.id).str("32"), "general.alignment: expected an integer but found STRING");
  }

  @Test
  void rejectsBadTensorInfos() throws IOException {
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("blk.0.ffn_down.weight", 13, 0, 256, 2).padTo(32).zeros(352),
        "tensor 'blk.0.ffn_down.weight': unsupported type id 13 (Q5_K); Selma reads F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 99, 0, 4).padTo(32).zeros(32), "tensor 'w': unsupported type id 99; Selma reads F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 0, 4, 0).padTo(32).zeros(32), "tensor 'w': dimension 1 is 0 (must be > 0)");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 0, 1, 1, 1, 1, 1).padTo(32).zeros(32), "tensor 'w': 5 dimensions (at most 4)");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 0, 1L << 40, 1L << 40).padTo(32), "tensor 'w': size overflows 64 bits");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 0, 1L << 61).padTo(32), "tensor 'w': size overflows 64 bits");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", GgmlType.Q8_0.ggufId, 0, 48, 2).padTo(32).zeros(128),
        "tensor 'w': row length 48 is not a multiple of the Q8_0 block size 32");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 16, 4).padTo(32).zeros(64), "tensor 'w': offset 16 is not a multiple of the alignment 32");
    rejects(GgufBytes.header(3, 2, 0).tensorInfo("w", 0, 0, 4).tensorInfo("w", 0, 32, 4).padTo(32).zeros(64), "tensor 'w': duplicate tensor name");
  }

  @Test
  void rejectsTensorDataOutsideTheFileOrOverlapping() throws IOException {
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 0, 4).padTo(32).zeros(15),
        "tensor 'w': data [0, 16) of the data section extends beyond the end of the file (data section holds 15 bytes)");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 1L << 62, 4).padTo(32).zeros(64),
        "tensor 'w': data [4611686018427387904, 4611686018427387920) of the data section extends beyond the end of the file (data section holds 64 bytes)");
    rejects(GgufBytes.header(3, 1, 0).tensorInfo("w", 0, 0, 4),
        "data section: file ends at 57 before the data section at 64");
    rejects(GgufBytes.header(3, 2, 0).tensorInfo("a", 0, 0, 16).tensorInfo("b", 0, 32, 4).padTo(32).zeros(96),
        "tensor 'b': data at offset 32 overlaps tensor 'a' at [0, 64)");
  }

  @Test
  void sampleWithEveryTypeReadsFully() throws IOException {
    try (GgufFile gguf = GgufFile.open(writeSample(dir.resolve("sample.gguf")))) {
      assertEquals(GgmlType.values().length + 2, gguf.tensors().size());
      for (Tensor t : gguf.tensors().values()) {
        assertEquals(t.elementCount(), Quants.dequantize(t).length);
      }
      assertArrayEquals(new long[] {2, 3, 4}, gguf.tensor("t.3d").shape());
    }
  }
}
