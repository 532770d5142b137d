package dev.selma.engine.backend.cuda;

import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A model's weights rounded to bf16 (round to nearest even), as the CUDA backend's bf16 mode stores
 * them. The CPU reference on these weights computes what the GPU's stored numbers say, so comparing
 * with it measures the GPU's own bf16 arithmetic (bf16 GEMM inputs and KV cache) apart from the
 * rounding of the weights, which high-gain random test models amplify far beyond real models.
 */
final class Bf16Twin {
  private Bf16Twin() {}

  static LlamaWeights of(LlamaWeights w) {
    UnaryOperator<Tensor> f = t -> {
      if (t == null) {
        return null;
      }
      byte[] bf16 = Quants.quantize(GgmlType.BF16, Quants.dequantize(t));
      MemorySegment s = Arena.ofAuto().allocate(bf16.length, 2);
      MemorySegment.copy(MemorySegment.ofArray(bf16), 0, s, 0, bf16.length);
      return new Tensor(t.name(), GgmlType.BF16, t.shape(), s);
    };
    Tensor embedding = f.apply(w.tokenEmbedding());
    List<LlamaWeights.Layer> layers = w.layers().stream().map(l -> new LlamaWeights.Layer(f.apply(l.attnNorm()),
        f.apply(l.wq()), f.apply(l.wk()), f.apply(l.wv()), f.apply(l.wo()), f.apply(l.bq()), f.apply(l.bk()),
        f.apply(l.bv()), f.apply(l.ffnNorm()), f.apply(l.wGate()), f.apply(l.wUp()), f.apply(l.wDown()))).toList();
    return new LlamaWeights(embedding, layers, f.apply(w.outputNorm()),
        w.output() == w.tokenEmbedding() ? embedding : f.apply(w.output()), w.ropeFreqFactors());
  }
}
