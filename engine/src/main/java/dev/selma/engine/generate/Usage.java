package dev.selma.engine.generate;

/**
 * Token counts and timings of one generation.
 *
 * @param promptTokens tokens in the prompt
 * @param cachedPromptTokens prompt tokens whose keys and values were reused rather than computed
 * @param generatedTokens tokens generated
 * @param prefillNanos time spent on the prompt
 * @param decodeNanos time spent generating
 */
public record Usage(int promptTokens, int cachedPromptTokens, int generatedTokens, long prefillNanos,
    long decodeNanos) {

  public double prefillTokensPerSecond() {
    return prefillNanos == 0 ? 0 : (promptTokens - cachedPromptTokens) * 1e9 / prefillNanos;
  }

  public double decodeTokensPerSecond() {
    return decodeNanos == 0 ? 0 : generatedTokens * 1e9 / decodeNanos;
  }
}
