package dev.selma.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
  @TempDir Path dir;

  @Test
  void readsF32F16AndBf16WithMetadata() throws IOException {
    Map<String, SafetensorsFixture.Entry> t = new LinkedHashMap<>();
    t.put("a", SafetensorsFixture.floats("F32", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6.5f}));
    t.put("b", SafetensorsFixture.floats("F16", new long[] {4}, new float[] {0.5f, -1, 2048, 0}));
    t.put("c", SafetensorsFixture.floats("BF16", new long[] {1, 1, 2}, new float[] {-3, 1.5f}));
    t.put("scalar", SafetensorsFixture.floats("F32", new long[] {}, new float[] {42}));
    Path file = SafetensorsFixture.write(dir.resolve("m.safetensors"), t, Map.of("format", "pt"));
    try (Safetensors st = Safetensors.open(file)) {
      assertEquals(List.of("a", "b", "c", "scalar"), List.copyOf(st.tensors().keySet()));
      assertEquals(Map.of("format", "pt"), st.metadata());
      assertEquals(GgmlType.F16, st.tensor("b").type());
      assertArrayEquals(new long[] {1, 1, 2}, st.tensor("c").shape());
      assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6.5f}, Quants.dequantize(st.tensor("a")));
      assertArrayEquals(new float[] {0.5f, -1, 2048, 0}, Quants.dequantize(st.tensor("b")));
      assertArrayEquals(new float[] {-3, 1.5f}, Quants.dequantize(st.tensor("c")));
      assertArrayEquals(new float[] {42}, Quants.dequantize(st.tensor("scalar")));
    }
  }

  @Test
  void readsShardedCheckpointsThroughTheIndex() throws IOException {
    Path folder = TinyHfModel.llama().withShards(3).write(dir.resolve("m"), 1);
    try (Safetensors st = Safetensors.open(folder)) {
      assertEquals(3, st.files().size());
      assertEquals(TinyHfModel.llama().shapes().keySet(), st.tensors().keySet());
      assertArrayEquals(new long[] {256, 512}, st.tensor("model.layers.1.mlp.down_proj.weight").shape());
    }
  }

  private ModelFormatException rejects(String header, int dataBytes, String expectedSuffix) throws IOException {
    Path file = SafetensorsFixture.writeRaw(dir.resolve("bad.safetensors"), header, new byte[dataBytes]);
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> Safetensors.open(file).close());
    assertTrue(e.getMessage().startsWith(file + ": ") && e.getMessage().endsWith(expectedSuffix), e.getMessage());
    return e;
  }

  @Test
  void rejectsBadHeaders() throws IOException {
    Path tiny = Files.write(dir.resolve("tiny.safetensors"), new byte[3]);
    assertEquals(tiny + ": header: file of 3 bytes has no 8-byte header length",
        assertThrows(ModelFormatException.class, () -> Safetensors.open(tiny)).getMessage());
    Path huge = Files.write(dir.resolve("huge.safetensors"), new byte[] {0, 0, 0, 0, 0, 0, 0, 0x10, '{', '}'});
    assertTrue(assertThrows(ModelFormatException.class, () -> Safetensors.open(huge)).getMessage()
        .endsWith("header: header length 1152921504606846976 is not between 2 and min(100000000, file size 10 - 8)"));
    rejects("[1, 2]", 0, "JSON is not an object");
    rejects("{\"a\": ", 0, "");
    assertTrue(rejects("{\"a\": 1, \"a\": 2}", 0, "").getMessage().contains("malformed JSON: Duplicate field 'a'"));
    rejects("{\"__metadata__\": {\"x\": 1}}", 0, "__metadata__['x']: must be a string");
  }

  @Test
  void rejectsBadTensorEntries() throws IOException {
    rejects("{\"w\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 16,
        "tensor 'w': unsupported dtype I64; Selma reads F32, F16, BF16");
    rejects("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "tensor 'w': dtype missing or not a string");
    rejects("{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8,
        "tensor 'w': shape must hold non-negative integers, found -2");
    rejects("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 0], \"data_offsets\": [0, 0]}}", 8,
        "tensor 'w': empty tensor (dimension 1 is 0)");
    rejects("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
        "tensor 'w': data_offsets [0, 8] hold 8 bytes but F32[3] needs 12");
    rejects("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}", 12,
        "tensor 'w': data_offsets [8, 16] are not inside the data section of 12 bytes");
    rejects("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 12,
        "tensor 'w': data_offsets [8, 0] are not inside the data section of 12 bytes");
    rejects("{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 8]}}", 8,
        "tensor 'w': size overflows 64 bits");
    rejects("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
        + " \"b\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [8, 16]}}", 16,
        "tensor 'b': data_offsets [8, 16] overlap tensor 'a' at [0, 16]");
  }

  @Test
  void rejectsInconsistentIndexes() throws IOException {
    Path folder = TinyHfModel.llama().withShards(2).write(dir.resolve("m"), 1);
    Path index = folder.resolve(Safetensors.INDEX_FILE);
    String original = Files.readString(index);
    Files.writeString(index, original.replace("\"lm_head.weight\":\"model-00002-of-00002.safetensors\"",
        "\"lm_head.weight\":\"model-00001-of-00002.safetensors\""));
    assertEquals(index + ": weight_map['lm_head.weight']: tensor is not in shard model-00001-of-00002.safetensors",
        assertThrows(ModelFormatException.class, () -> Safetensors.open(folder)).getMessage());
    Files.writeString(index, original.replace("model-00002-of-00002", "../model-00002-of-00002"));
    assertTrue(assertThrows(ModelFormatException.class, () -> Safetensors.open(folder)).getMessage()
        .endsWith("is not a file name in the same folder"));
    Files.writeString(index, original.replace("model-00002-of-00002", "missing"));
    assertTrue(assertThrows(ModelFormatException.class, () -> Safetensors.open(folder)).getMessage()
        .endsWith("shard missing.safetensors does not exist"));
    Files.writeString(index, "{\"metadata\": {}}");
    assertEquals(index + ": weight_map: missing or not an object",
        assertThrows(ModelFormatException.class, () -> Safetensors.open(folder)).getMessage());
  }
}
