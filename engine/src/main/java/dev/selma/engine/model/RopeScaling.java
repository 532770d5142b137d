package dev.selma.engine.model;

/**
 * A model's RoPE scaling as {@code config.json}'s {@code rope_scaling} (or GGUF's {@code
 * *.rope.scaling.*}) describes it. Fields a type does not use are NaN or 0. How each type changes
 * the rotary frequencies is implemented in one place, {@code dev.selma.engine.attention.Rope}.
 *
 * @param type the scaling type
 * @param factor the context extension factor (linear, dynamic, yarn, llama3)
 * @param originalMaxPositionEmbeddings the trained context length before scaling (yarn, llama3;
 *     dynamic uses the model's {@code max_position_embeddings}); 0 when unset
 * @param lowFreqFactor llama3 only
 * @param highFreqFactor llama3 only
 * @param betaFast yarn only (default 32)
 * @param betaSlow yarn only (default 1)
 * @param attentionFactor yarn only: the attention temperature; NaN means {@code 0.1·ln(factor)+1}
 */
public record RopeScaling(
    Type type,
    double factor,
    int originalMaxPositionEmbeddings,
    double lowFreqFactor,
    double highFreqFactor,
    double betaFast,
    double betaSlow,
    double attentionFactor) {

  public enum Type {
    NONE,
    LINEAR,
    DYNAMIC,
    YARN,
    LLAMA3
  }

  public static final RopeScaling NONE = new RopeScaling(Type.NONE, 1, 0, Double.NaN, Double.NaN, Double.NaN,
      Double.NaN, Double.NaN);

  public RopeScaling {
    if (type != Type.NONE && !(factor >= 1)) {
      throw new IllegalArgumentException("rope_scaling factor must be >= 1, got " + factor);
    }
    if ((type == Type.YARN || type == Type.LLAMA3) && originalMaxPositionEmbeddings <= 0) {
      throw new IllegalArgumentException(
          "rope_scaling type " + type + " needs original_max_position_embeddings > 0");
    }
  }

  public static RopeScaling linear(double factor) {
    return new RopeScaling(Type.LINEAR, factor, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
  }

  public static RopeScaling dynamic(double factor) {
    return new RopeScaling(Type.DYNAMIC, factor, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
  }

  public static RopeScaling yarn(double factor, int originalMax, double betaFast, double betaSlow,
      double attentionFactor) {
    return new RopeScaling(Type.YARN, factor, originalMax, Double.NaN, Double.NaN, betaFast, betaSlow,
        attentionFactor);
  }

  public static RopeScaling llama3(double factor, int originalMax, double lowFreqFactor, double highFreqFactor) {
    return new RopeScaling(Type.LLAMA3, factor, originalMax, lowFreqFactor, highFreqFactor, Double.NaN,
        Double.NaN, Double.NaN);
  }
}
