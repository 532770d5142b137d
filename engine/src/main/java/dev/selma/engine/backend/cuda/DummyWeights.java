package dev.selma.engine.backend.cuda;

import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.RopeScaling;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Real architectures without their files, for a backend with {@link CudaOptions#dummyWeights()}:
 * the configuration of a named model and tensors of its shapes (bf16) whose host bytes are never
 * read. So that the shapes need no 16 GB of host memory, every tensor views the same zeroed block,
 * as large as the largest tensor; the GPU generates the values ({@code fill.cu}).
 */
public final class DummyWeights {
  private DummyWeights() {}

  private static final Map<String, ModelConfig> ARCHITECTURES = Map.of(
      "llama-3-8b", new ModelConfig("llama", 128256, 4096, 14336, 32, 32, 8, 128, 1e-5, 500000, RopeScaling.NONE,
          8192, false, false, ModelConfig.RopeStyle.HALF),
      "llama-3.1-8b", new ModelConfig("llama", 128256, 4096, 14336, 32, 32, 8, 128, 1e-5, 500000,
          RopeScaling.llama3(8, 8192, 1, 4), 131072, false, false, ModelConfig.RopeStyle.HALF),
      "llama-3.2-1b", new ModelConfig("llama", 128256, 2048, 8192, 16, 32, 8, 64, 1e-5, 500000,
          RopeScaling.llama3(32, 8192, 1, 4), 131072, false, true, ModelConfig.RopeStyle.HALF));

  /** The configuration of a named architecture: {@code llama-3-8b}, {@code llama-3.1-8b}, {@code llama-3.2-1b}. */
  public static ModelConfig architecture(String name) {
    ModelConfig c = ARCHITECTURES.get(name.toLowerCase(Locale.ROOT));
    if (c == null) {
      throw new IllegalArgumentException("unknown architecture '" + name + "'; known: " + ARCHITECTURES.keySet());
    }
    return c;
  }

  /** Tensors of the configuration's shapes, bf16, named as in GGUF files; their host bytes are zeros. */
  public static LlamaWeights tensors(ModelConfig c) {
    return tensors(c, GgmlType.BF16);
  }

  /**
   * The same with the matrices of type {@code matrices} (BF16, or Q8_0, Q4_0 or Q4_K for a backend that
   * keeps them quantized); vectors stay bf16.
   */
  public static LlamaWeights tensors(ModelConfig c, GgmlType matrices) {
    long largest = 2L * Math.max((long) c.vocabSize() * c.hiddenSize(),
        Math.max((long) c.intermediateSize() * c.hiddenSize(), (long) c.qDim() * c.hiddenSize()));
    MemorySegment zeros = Arena.ofAuto().allocate(largest, 8);
    java.util.function.BiFunction<String, long[], Tensor> matrix = (name, shape) -> tensor(zeros, name, matrices, shape);
    List<LlamaWeights.Layer> layers = new ArrayList<>();
    for (int l = 0; l < c.numLayers(); l++) {
      String p = "blk." + l + ".";
      layers.add(new LlamaWeights.Layer(
          tensor(zeros, p + "attn_norm", c.hiddenSize()),
          matrix.apply(p + "attn_q", new long[] {c.qDim(), c.hiddenSize()}),
          matrix.apply(p + "attn_k", new long[] {c.kvDim(), c.hiddenSize()}),
          matrix.apply(p + "attn_v", new long[] {c.kvDim(), c.hiddenSize()}),
          matrix.apply(p + "attn_output", new long[] {c.hiddenSize(), c.qDim()}),
          c.attentionBias() ? tensor(zeros, p + "attn_q.bias", c.qDim()) : null,
          c.attentionBias() ? tensor(zeros, p + "attn_k.bias", c.kvDim()) : null,
          c.attentionBias() ? tensor(zeros, p + "attn_v.bias", c.kvDim()) : null,
          tensor(zeros, p + "ffn_norm", c.hiddenSize()),
          matrix.apply(p + "ffn_gate", new long[] {c.intermediateSize(), c.hiddenSize()}),
          matrix.apply(p + "ffn_up", new long[] {c.intermediateSize(), c.hiddenSize()}),
          matrix.apply(p + "ffn_down", new long[] {c.hiddenSize(), c.intermediateSize()})));
    }
    Tensor embedding = matrix.apply("token_embd", new long[] {c.vocabSize(), c.hiddenSize()});
    return new LlamaWeights(embedding, layers, tensor(zeros, "output_norm", c.hiddenSize()),
        c.tieWordEmbeddings() ? embedding : matrix.apply("output", new long[] {c.vocabSize(), c.hiddenSize()}), null);
  }

  private static Tensor tensor(MemorySegment zeros, String name, long... shape) {
    return tensor(zeros, name, GgmlType.BF16, shape);
  }

  private static Tensor tensor(MemorySegment zeros, String name, GgmlType type, long... shape) {
    return new Tensor(name + ".weight", type, shape, zeros.asSlice(0, Tensor.byteSize(type, shape)));
  }
}
