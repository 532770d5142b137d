package dev.selma.engine.backend;

/**
 * The logits of one token, left where they were computed: a sampler asks for the few it needs
 * ({@link #top}) and reads the whole row ({@link #all}) only when its rule needs every logit.
 */
public interface Logits {
  int vocabSize();

  /** Every logit, a fresh array the caller may modify. */
  float[] all();

  /** The {@code k} largest logits and the softmax denominator at {@code inverseTemperature} (see {@link TopLogits}). */
  TopLogits top(int k, float inverseTemperature);

  /**
   * The greedy choice, {@code top(1, 0)}'s token (the largest logit, the lowest id among equal ones), left
   * where it was made until its id is asked for (see {@link Backend#choosesAhead}).
   */
  default Token greedy() {
    return Token.of(top(1, 0).ids()[0]);
  }

  /** Logits already on the host. */
  static Logits of(float[] row) {
    return new Logits() {
      @Override
      public int vocabSize() {
        return row.length;
      }

      @Override
      public float[] all() {
        return row.clone();
      }

      @Override
      public TopLogits top(int k, float inverseTemperature) {
        return TopLogits.of(row, k, inverseTemperature);
      }
    };
  }
}
