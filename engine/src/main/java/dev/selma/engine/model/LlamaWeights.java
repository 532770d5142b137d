package dev.selma.engine.model;

import java.util.List;

/**
 * The weights of a Llama-family model, by role. Matrices are {@code [outFeatures, inFeatures]}.
 *
 * @param tokenEmbedding {@code [vocabSize, hiddenSize]}
 * @param layers one entry per transformer block
 * @param outputNorm the final RMSNorm weight
 * @param output {@code [vocabSize, hiddenSize]}; the same tensor as {@code tokenEmbedding} when tied
 * @param ropeFreqFactors null, or {@code [headDim/2]} F32 divisors of the rotary frequencies, as
 *     llama.cpp stores llama3 rope scaling in GGUF files ({@code rope_freqs.weight})
 */
public record LlamaWeights(Tensor tokenEmbedding, List<Layer> layers, Tensor outputNorm, Tensor output,
    Tensor ropeFreqFactors) {

  public LlamaWeights {
    layers = List.copyOf(layers);
  }

  /**
   * One transformer block. The biases are null unless the model has {@code attention_bias} (Qwen2).
   */
  public record Layer(
      Tensor attnNorm,
      Tensor wq,
      Tensor wk,
      Tensor wv,
      Tensor wo,
      Tensor bq,
      Tensor bk,
      Tensor bv,
      Tensor ffnNorm,
      Tensor wGate,
      Tensor wUp,
      Tensor wDown) {}
}
