package dev.selma.engine.generate;

/**
 * Hears a generation as it runs. Called on the generating thread; keep it quick. Every method has
 * an empty default.
 */
public interface GenerationListener {
  /** Prompt tokens processed so far during the prefill, after each chunk. */
  default void onPrefillProgress(int done, int total, double tokensPerSecond) {}

  /**
   * A token was generated. {@code text} is the new complete text it made visible (possibly empty:
   * half a UTF-8 character, or text held back because it may start a stop sequence).
   */
  default void onToken(int token, String text) {}
}
