package dev.selma.engine.generate;

/**
 * How the next token is chosen from the logits. Processors apply in the order Hugging Face applies
 * them: repetition penalty, frequency and presence penalties, temperature, top-k, top-p, min-p.
 *
 * @param temperature 0 means greedy (argmax); otherwise logits are divided by it before sampling
 * @param topK keep the k most likely tokens; 0 keeps all
 * @param topP keep the smallest set of most likely tokens whose probability reaches p; 1 keeps all
 * @param minP drop tokens less likely than {@code minP · p(most likely)}; 0 keeps all
 * @param repetitionPenalty Hugging Face's (CTRL's) penalty for tokens already in the sequence
 *     (prompt included): positive logits are divided by it, negative ones multiplied; 1 is off
 * @param frequencyPenalty OpenAI's: subtracted from a token's logit once per time it was generated
 * @param presencePenalty OpenAI's: subtracted once from the logit of every token generated before
 * @param seed seed of the random draw; the same seed, prompt and parameters give the same output
 */
public record SamplingParams(double temperature, int topK, double topP, double minP, double repetitionPenalty,
    double frequencyPenalty, double presencePenalty, long seed) {

  public static final SamplingParams GREEDY = new SamplingParams(0, 0, 1, 0, 1, 0, 0, 0);

  public SamplingParams {
    require(Double.isFinite(temperature) && temperature >= 0, "temperature", temperature, ">= 0");
    require(topK >= 0, "top_k", topK, ">= 0 (0 disables it)");
    require(topP > 0 && topP <= 1, "top_p", topP, "in (0, 1]");
    require(minP >= 0 && minP < 1, "min_p", minP, "in [0, 1)");
    require(Double.isFinite(repetitionPenalty) && repetitionPenalty > 0, "repetition_penalty", repetitionPenalty,
        "> 0 (1 disables it)");
    require(Double.isFinite(frequencyPenalty) && Math.abs(frequencyPenalty) <= 2, "frequency_penalty",
        frequencyPenalty, "in [-2, 2]");
    require(Double.isFinite(presencePenalty) && Math.abs(presencePenalty) <= 2, "presence_penalty",
        presencePenalty, "in [-2, 2]");
  }

  private static void require(boolean ok, String name, Object value, String rule) {
    if (!ok) {
      throw new IllegalArgumentException(name + " must be " + rule + ", got " + value);
    }
  }

  public boolean greedy() {
    return temperature == 0;
  }

  public SamplingParams withTemperature(double t) {
    return new SamplingParams(t, topK, topP, minP, repetitionPenalty, frequencyPenalty, presencePenalty, seed);
  }

  public SamplingParams withTopK(int k) {
    return new SamplingParams(temperature, k, topP, minP, repetitionPenalty, frequencyPenalty, presencePenalty, seed);
  }

  public SamplingParams withTopP(double p) {
    return new SamplingParams(temperature, topK, p, minP, repetitionPenalty, frequencyPenalty, presencePenalty, seed);
  }

  public SamplingParams withMinP(double p) {
    return new SamplingParams(temperature, topK, topP, p, repetitionPenalty, frequencyPenalty, presencePenalty, seed);
  }

  public SamplingParams withRepetitionPenalty(double r) {
    return new SamplingParams(temperature, topK, topP, minP, r, frequencyPenalty, presencePenalty, seed);
  }

  public SamplingParams withFrequencyPenalty(double f) {
    return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, f, presencePenalty, seed);
  }

  public SamplingParams withPresencePenalty(double p) {
    return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, frequencyPenalty, p, seed);
  }

  public SamplingParams withSeed(long s) {
    return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, frequencyPenalty, presencePenalty, s);
  }
}
