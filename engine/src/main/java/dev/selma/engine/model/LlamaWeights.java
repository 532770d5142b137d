package dev.selma.engine.model;

import java.util.List;

/**
 * The weights of a Llama-family model, by role. Matrices are {@code [outFeatures, inFeatures]}.
 *
 * @param tokenEmbedding {@code [vocabSize, hiddenSize]}
 * @param layers one entry per transformer block
 * @param outputNorm the final RMSNorm weight
 * @param output {@code [vocabSize, hiddenSize]}; the same tensor as {@code tokenEmbedding} when tied
 */
public record LlamaWeights(Tensor tokenEmbedding, List<Layer> layers, Tensor outputNorm, Tensor output) {

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
