package dev.selma.engine.llama;

import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.RopeScaling;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Small random-weight Llama models held in memory, for tests that need a model but no file. */
public final class RandomModel {
  private RandomModel() {}

  public static ModelConfig config(int vocab, int hidden, int layers, int heads, int kvHeads, boolean bias) {
    return new ModelConfig("llama", vocab, hidden, hidden * 2 + 8, layers, heads, kvHeads, hidden / heads, 1e-5,
        10000, RopeScaling.NONE, 4096, bias, false, ModelConfig.RopeStyle.HALF);
  }

  public static LlamaWeights weights(ModelConfig c, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    Arena arena = Arena.ofAuto();
    List<LlamaWeights.Layer> layers = new ArrayList<>();
    for (int l = 0; l < c.numLayers(); l++) {
      String p = "blk." + l + ".";
      layers.add(new LlamaWeights.Layer(
          norm(arena, r, p + "attn_norm", c.hiddenSize()),
          matrix(arena, r, p + "attn_q", c.qDim(), c.hiddenSize()),
          matrix(arena, r, p + "attn_k", c.kvDim(), c.hiddenSize()),
          matrix(arena, r, p + "attn_v", c.kvDim(), c.hiddenSize()),
          matrix(arena, r, p + "attn_output", c.hiddenSize(), c.qDim()),
          c.attentionBias() ? vector(arena, r, p + "attn_q.bias", c.qDim()) : null,
          c.attentionBias() ? vector(arena, r, p + "attn_k.bias", c.kvDim()) : null,
          c.attentionBias() ? vector(arena, r, p + "attn_v.bias", c.kvDim()) : null,
          norm(arena, r, p + "ffn_norm", c.hiddenSize()),
          matrix(arena, r, p + "ffn_gate", c.intermediateSize(), c.hiddenSize()),
          matrix(arena, r, p + "ffn_up", c.intermediateSize(), c.hiddenSize()),
          matrix(arena, r, p + "ffn_down", c.hiddenSize(), c.intermediateSize())));
    }
    Tensor embedding = matrix(arena, r, "token_embd", c.vocabSize(), c.hiddenSize());
    return new LlamaWeights(embedding, layers, norm(arena, r, "output_norm", c.hiddenSize()),
        c.tieWordEmbeddings() ? embedding : matrix(arena, r, "output", c.vocabSize(), c.hiddenSize()), null);
  }

  /** The same weights with every matrix stored as {@code type} (quantized by {@link Quants}); norms stay. */
  public static LlamaWeights quantized(LlamaWeights w, GgmlType type) {
    List<LlamaWeights.Layer> layers = new ArrayList<>();
    for (LlamaWeights.Layer l : w.layers()) {
      layers.add(new LlamaWeights.Layer(l.attnNorm(), quantized(l.wq(), type), quantized(l.wk(), type),
          quantized(l.wv(), type), quantized(l.wo(), type), l.bq(), l.bk(), l.bv(), l.ffnNorm(),
          quantized(l.wGate(), type), quantized(l.wUp(), type), quantized(l.wDown(), type)));
    }
    return new LlamaWeights(quantized(w.tokenEmbedding(), type), layers, w.outputNorm(), quantized(w.output(), type),
        null);
  }

  private static Tensor quantized(Tensor t, GgmlType type) {
    byte[] bytes = Quants.quantize(type, Quants.dequantize(t));
    MemorySegment s = Arena.ofAuto().allocate(bytes.length, 64);
    MemorySegment.copy(MemorySegment.ofArray(bytes), 0, s, 0, bytes.length);
    return new Tensor(t.name(), type, t.shape(), s);
  }

  private static Tensor matrix(Arena a, SplittableRandom r, String name, int rows, int cols) {
    return tensor(a, name, new long[] {rows, cols}, rows * cols, () -> (float) (r.nextGaussian() * 0.3));
  }

  private static Tensor vector(Arena a, SplittableRandom r, String name, int n) {
    return tensor(a, name, new long[] {n}, n, () -> (float) (r.nextGaussian() * 0.3));
  }

  private static Tensor norm(Arena a, SplittableRandom r, String name, int n) {
    return tensor(a, name, new long[] {n}, n, () -> (float) (1 + r.nextGaussian() * 0.2));
  }

  private interface FloatSource {
    float next();
  }

  private static Tensor tensor(Arena a, String name, long[] shape, int n, FloatSource values) {
    MemorySegment s = a.allocate(4L * n, 4);
    for (int i = 0; i < n; i++) {
      s.setAtIndex(ValueLayout.JAVA_FLOAT, i, values.next());
    }
    return new Tensor(name + ".weight", GgmlType.F32, shape, s);
  }
}
