package dev.selma.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfToGgufTest {
  @TempDir Path dir;

  private Path convert(TinyHfModel model, GgmlType type, Map<String, Value> extra) throws IOException {
    Path folder = model.write(dir.resolve("hf-" + model.architecture()), 3);
    Path out = dir.resolve(model.architecture() + "-" + type + ".gguf");
    try (ModelFiles hf = ModelLoader.open(folder)) {
      HfToGguf.convert(hf, out, type, extra);
    }
    return out;
  }

  /** Row {@code s} of an HF q/k matrix is row {@code h·hd + 2i + j} of the GGUF one, where s = h·hd + j·hd/2 + i. */
  private static long ggufRowOf(long s, long headDim) {
    long h = s / headDim;
    long j = (s % headDim) / (headDim / 2);
    long i = (s % headDim) % (headDim / 2);
    return h * headDim + 2 * i + j;
  }

  /** Every HF row comes back from the GGUF tensor within the type's quantization error. */
  private static void assertConverted(Tensor hf, Tensor gguf, GgmlType type, long permutedHeadDim) {
    assertArrayEquals(hf.shape(), gguf.shape(), gguf.name());
    for (long s = 0; s < hf.rows(); s++) {
      float[] expected = Quants.dequantizeRow(hf, s);
      float[] actual = Quants.dequantizeRow(gguf, permutedHeadDim == 0 ? s : ggufRowOf(s, permutedHeadDim));
      float amax = 0;
      for (float v : expected) {
        amax = Math.max(amax, Math.abs(v));
      }
      for (int i = 0; i < expected.length; i++) {
        assertEquals(expected[i], actual[i], QuantsTest.tolerance(type, amax), gguf.name() + " row " + s + " col " + i);
      }
    }
  }

  private static void assertVectorExact(Tensor hf, Tensor gguf, long permutedHeadDim) {
    assertEquals(GgmlType.F32, gguf.type(), gguf.name());
    float[] expected = Quants.dequantize(hf);
    float[] actual = Quants.dequantize(gguf);
    for (int s = 0; s < expected.length; s++) {
      assertEquals(expected[s], actual[(int) (permutedHeadDim == 0 ? s : ggufRowOf(s, permutedHeadDim))], gguf.name());
    }
  }

  private static void assertSameModel(ModelFiles hf, ModelFiles gguf, GgmlType type, boolean permuted) {
    ModelConfig a = hf.config();
    ModelConfig b = gguf.config();
    assertEquals(List.of(a.vocabSize(), a.hiddenSize(), a.intermediateSize(), a.numLayers(), a.numHeads(),
            a.numKvHeads(), a.headDim(), a.maxPositionEmbeddings()),
        List.of(b.vocabSize(), b.hiddenSize(), b.intermediateSize(), b.numLayers(), b.numHeads(), b.numKvHeads(),
            b.headDim(), b.maxPositionEmbeddings()));
    assertEquals((float) a.rmsNormEps(), (float) b.rmsNormEps());
    assertEquals(a.ropeTheta(), b.ropeTheta());
    assertEquals(a.attentionBias(), b.attentionBias());
    assertEquals(a.tieWordEmbeddings(), b.tieWordEmbeddings());
    assertEquals(permuted ? ModelConfig.RopeStyle.INTERLEAVED : ModelConfig.RopeStyle.HALF, b.ropeStyle());
    long hd = permuted ? a.headDim() : 0;
    LlamaWeights x = hf.weights();
    LlamaWeights y = gguf.weights();
    assertConverted(x.tokenEmbedding(), y.tokenEmbedding(), type, 0);
    assertConverted(x.output(), y.output(), type, 0);
    assertVectorExact(x.outputNorm(), y.outputNorm(), 0);
    for (int i = 0; i < x.layers().size(); i++) {
      LlamaWeights.Layer l = x.layers().get(i);
      LlamaWeights.Layer m = y.layers().get(i);
      assertConverted(l.wq(), m.wq(), type, hd);
      assertConverted(l.wk(), m.wk(), type, hd);
      assertConverted(l.wv(), m.wv(), type, 0);
      assertConverted(l.wo(), m.wo(), type, 0);
      assertConverted(l.wGate(), m.wGate(), type, 0);
      assertConverted(l.wUp(), m.wUp(), type, 0);
      assertConverted(l.wDown(), m.wDown(), type, 0);
      assertVectorExact(l.attnNorm(), m.attnNorm(), 0);
      assertVectorExact(l.ffnNorm(), m.ffnNorm(), 0);
      if (l.bq() != null) {
        assertVectorExact(l.bq(), m.bq(), hd);
        assertVectorExact(l.bk(), m.bk(), hd);
        assertVectorExact(l.bv(), m.bv(), 0);
      }
    }
  }

  @Test
  void llamaConvertsToEveryTypeWithPermutedQkRows() throws IOException {
    TinyHfModel model = TinyHfModel.llama();
    Path folder = model.write(dir.resolve("llama"), 11);
    try (ModelFiles hf = ModelLoader.open(folder)) {
      for (GgmlType type : GgmlType.values()) {
        Path out = dir.resolve("llama-" + type + ".gguf");
        HfToGguf.convert(hf, out, type, Map.of());
        try (ModelFiles gguf = ModelLoader.open(out)) {
          assertEquals(ModelFiles.Format.GGUF, gguf.format());
          assertEquals("llama", gguf.config().architecture());
          assertEquals(type, gguf.weights().layers().get(1).wq().type());
          assertEquals(GgmlType.F32, gguf.weights().layers().get(1).attnNorm().type());
          assertSameModel(hf, gguf, type, true);
        }
      }
    }
  }

  @Test
  void permutationMovesRowsAsLlamaCppDoes() throws IOException {
    try (ModelFiles hf = ModelLoader.open(TinyHfModel.llama().write(dir.resolve("llama"), 5))) {
      Path out = dir.resolve("f32.gguf");
      HfToGguf.convert(hf, out, GgmlType.F32, Map.of());
      try (ModelFiles gguf = ModelLoader.open(out)) {
        Tensor q = hf.weights().layers().getFirst().wq();
        Tensor k = hf.weights().layers().getFirst().wk();
        Tensor gq = gguf.weights().layers().getFirst().wq();
        Tensor gk = gguf.weights().layers().getFirst().wk();
        // Head 1 of 64 rows: GGUF rows 64, 65, 66 are HF rows 64, 96, 65 (pairs (i, i + 32) interleaved).
        assertArrayEquals(Quants.dequantizeRow(q, 64), Quants.dequantizeRow(gq, 64));
        assertArrayEquals(Quants.dequantizeRow(q, 96), Quants.dequantizeRow(gq, 65));
        assertArrayEquals(Quants.dequantizeRow(q, 65), Quants.dequantizeRow(gq, 66));
        assertArrayEquals(Quants.dequantizeRow(k, 127), Quants.dequantizeRow(gk, 127));
        assertArrayEquals(Quants.dequantizeRow(k, 95), Quants.dequantizeRow(gk, 126));
      }
    }
  }

  @Test
  void qwen2KeepsRowOrderBiasesAndTiedEmbeddings() throws IOException {
    Path out = convert(TinyHfModel.qwen2().withRopeScaling(
        "{\"type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 1024}"), GgmlType.Q8_0,
        Map.of("tokenizer.ggml.model", new Value(ValueType.STRING, ValueType.STRING, "gpt2")));
    try (GgufFile gguf = GgufFile.open(out)) {
      assertEquals("qwen2", gguf.metadata().getString("general.architecture"));
      assertEquals("gpt2", gguf.metadata().getString("tokenizer.ggml.model"));
      assertFalse(gguf.tensors().containsKey("output.weight"));
      assertEquals("yarn", gguf.metadata().getString("qwen2.rope.scaling.type"));
      assertEquals(1024, gguf.metadata().getInt("qwen2.rope.scaling.original_context_length"));
    }
    try (ModelFiles hf = ModelLoader.open(dir.resolve("hf-Qwen2ForCausalLM"));
        ModelFiles gguf = ModelLoader.open(out)) {
      assertTrue(gguf.config().tieWordEmbeddings());
      assertSame(gguf.weights().tokenEmbedding(), gguf.weights().output());
      assertEquals(RopeScaling.yarn(4, 1024, 32, 1, Double.NaN), gguf.config().ropeScaling());
      assertSameModel(hf, gguf, GgmlType.Q8_0, false);
    }
  }

  @Test
  void mistralWithLinearScalingBecomesLlama() throws IOException {
    TinyHfModel mistral = new TinyHfModel("MistralForCausalLM", "{\"type\": \"linear\", \"factor\": 2.0}", false,
        false, "F16", 2, 256, 512);
    Path out = convert(mistral, GgmlType.F16, Map.of());
    try (ModelFiles gguf = ModelLoader.open(out)) {
      assertEquals("llama", gguf.config().architecture());
      assertEquals(RopeScaling.linear(2), gguf.config().ropeScaling());
      assertEquals(ModelConfig.RopeStyle.INTERLEAVED, gguf.config().ropeStyle());
      assertEquals("linear", gguf.ggufMetadata().getString("llama.rope.scaling.type"));
    }
  }

  /** Factors recomputed here in double from the llama3 rule: 1 above high frequencies, factor below low ones. */
  @Test
  void llama3ScalingBecomesRopeFreqsTensor() throws IOException {
    Path out = convert(TinyHfModel.llama().withRopeScaling("{\"rope_type\": \"llama3\", \"factor\": 8.0,"
        + " \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}"),
        GgmlType.BF16, Map.of());
    try (ModelFiles gguf = ModelLoader.open(out)) {
      assertEquals(RopeScaling.NONE, gguf.config().ropeScaling());
      assertFalse(gguf.ggufMetadata().contains("llama.rope.scaling.type"));
      float[] factors = Quants.dequantize(gguf.weights().ropeFreqFactors());
      int headDim = 64;
      assertEquals(headDim / 2, factors.length);
      for (int i = 0; i < factors.length; i++) {
        double wavelen = 2 * Math.PI * Math.pow(500000, 2.0 * i / headDim);
        double expected;
        if (wavelen < 8192 / 4.0) {
          expected = 1;
        } else if (wavelen > 8192 / 1.0) {
          expected = 8;
        } else {
          double smooth = (8192 / wavelen - 1) / (4 - 1);
          expected = 1 / ((1 - smooth) / 8 + smooth);
        }
        assertEquals(expected, factors[i], expected * 1e-5, "factor " + i);
      }
      assertEquals(1f, factors[0]);
      assertEquals(8f, factors[factors.length - 1]);
    }
  }

  @Test
  void refusesRowsThatDoNotHoldWholeBlocks() throws IOException {
    Path folder = TinyHfModel.llama().withSizes(128, 384).write(dir.resolve("small"), 1);
    try (ModelFiles hf = ModelLoader.open(folder)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> HfToGguf.convert(hf, dir.resolve("x.gguf"), GgmlType.Q4_K, Map.of()));
      assertEquals("cannot store model.embed_tokens.weight as Q4_K: its rows of 128 elements are not a multiple of "
          + "the Q4_K block size 256 (hidden 128, intermediate 384)", e.getMessage());
      assertFalse(Files.exists(dir.resolve("x.gguf")));
      HfToGguf.convert(hf, dir.resolve("q8.gguf"), GgmlType.Q8_0, Map.of());
      try (ModelFiles gguf = ModelLoader.open(dir.resolve("q8.gguf"))) {
        assertNull(gguf.weights().ropeFreqFactors());
      }
    }
  }

  @Test
  void refusesDynamicScalingWhichGgufCannotExpress() throws IOException {
    Path folder = TinyHfModel.llama().withRopeScaling("{\"type\": \"dynamic\", \"factor\": 2.0}").write(dir.resolve("d"), 1);
    try (ModelFiles hf = ModelLoader.open(folder)) {
      ModelFormatException e = assertThrows(ModelFormatException.class,
          () -> HfToGguf.convert(hf, dir.resolve("d.gguf"), GgmlType.F16, Map.of()));
      assertTrue(e.getMessage().endsWith("rope_scaling: dynamic NTK scaling has no GGUF encoding (llama.cpp does not support it)"));
    }
  }
}
