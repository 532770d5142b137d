package dev.selma.engine.model;

/**
 * The hyper-parameters of a Llama-family model, whichever file they came from.
 *
 * @param architecture {@code llama}, {@code mistral} or {@code qwen2}
 * @param vocabSize rows of the token embedding
 * @param hiddenSize model width
 * @param intermediateSize width of the SwiGLU MLP
 * @param numLayers transformer blocks
 * @param numHeads query heads
 * @param numKvHeads key/value heads (GQA: numHeads is a multiple)
 * @param headDim width of one head (not always hiddenSize / numHeads)
 * @param rmsNormEps epsilon of every RMSNorm
 * @param ropeTheta RoPE base
 * @param ropeScaling RoPE scaling, {@link RopeScaling#NONE} when absent
 * @param maxPositionEmbeddings the context length the model was configured for
 * @param attentionBias whether q/k/v projections have biases (Qwen2)
 * @param tieWordEmbeddings whether the output projection is the token embedding
 * @param ropeStyle how RoPE pairs the dimensions of a head
 */
public record ModelConfig(
    String architecture,
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    double rmsNormEps,
    double ropeTheta,
    RopeScaling ropeScaling,
    int maxPositionEmbeddings,
    boolean attentionBias,
    boolean tieWordEmbeddings,
    RopeStyle ropeStyle) {

  /** How RoPE pairs the dimensions of a head. */
  public enum RopeStyle {
    /**
     * Dimension i pairs with i + headDim/2 ("rotate_half", GPT-NeoX). Hugging Face checkpoints and
     * GGUF files of Qwen2.
     */
    HALF,
    /**
     * Dimension 2i pairs with 2i + 1 (GPT-J). GGUF files of the llama architecture, whose converter
     * permuted the rows of the q and k projections so that this pairing is equivalent to HALF on the
     * original weights.
     */
    INTERLEAVED
  }

  public ModelConfig {
    requirePositive("vocab_size", vocabSize);
    requirePositive("hidden_size", hiddenSize);
    requirePositive("intermediate_size", intermediateSize);
    requirePositive("num_hidden_layers", numLayers);
    requirePositive("num_attention_heads", numHeads);
    requirePositive("num_key_value_heads", numKvHeads);
    requirePositive("head_dim", headDim);
    requirePositive("max_position_embeddings", maxPositionEmbeddings);
    if (numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "num_attention_heads " + numHeads + " is not a multiple of num_key_value_heads " + numKvHeads);
    }
    if (headDim % 2 != 0) {
      throw new IllegalArgumentException("head_dim " + headDim + " must be even for RoPE");
    }
    if (!(rmsNormEps > 0) || !(ropeTheta > 0)) {
      throw new IllegalArgumentException("rms_norm_eps and rope_theta must be > 0");
    }
    if (ropeScaling == null) {
      ropeScaling = RopeScaling.NONE;
    }
  }

  private static void requirePositive(String name, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException(name + " must be > 0, got " + value);
    }
  }

  /** Query heads that share one key/value head. */
  public int groupSize() {
    return numHeads / numKvHeads;
  }

  public int qDim() {
    return numHeads * headDim;
  }

  public int kvDim() {
    return numKvHeads * headDim;
  }
}
