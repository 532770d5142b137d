package dev.selma.engine.eval;

/**
 * One evaluated needle.
 *
 * @param task the task
 * @param scheme the attention scheme
 * @param targetLength the requested prompt length in tokens
 * @param promptTokens the prompt's actual length
 * @param depth where the needle sat, 0 (start) to 1 (end)
 * @param needle the needle's index at this length and depth
 * @param expected what a correct answer contains
 * @param answer what the model answered
 * @param correct whether it was right
 * @param seconds time for the prompt and the answer
 * @param prefillSeconds of which reading the prompt (to the first token's logits)
 */
public record EvalResult(Task task, Scheme scheme, int targetLength, int promptTokens, double depth, int needle,
    String expected, String answer, boolean correct, double seconds, double prefillSeconds) {

  /** Prompt tokens read per second. */
  public double prefillTokensPerSecond() {
    return prefillSeconds > 0 ? promptTokens / prefillSeconds : 0;
  }
}
