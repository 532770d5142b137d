package dev.selma.engine.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Chooses tokens from logits as {@link SamplingParams} say. One sampler per generation. */
public final class Sampler {
  private final SamplingParams params;
  private final SplittableRandom random;
  /** Times each token appears in the sequence (prompt and generated), for the repetition penalty. */
  private final int[] seen;
  /** Times each token was generated, for the frequency and presence penalties. */
  private final int[] generated;

  public Sampler(SamplingParams params, int vocabSize, int[] prompt) {
    this.params = params;
    this.random = new SplittableRandom(params.seed());
    this.seen = new int[vocabSize];
    this.generated = new int[vocabSize];
    for (int t : prompt) {
      seen[t]++;
    }
  }

  /** Records a token that became part of the sequence without being sampled here. */
  public void accept(int token) {
    seen[token]++;
    generated[token]++;
  }

  /** Chooses the next token; {@code logits} is modified. */
  public int sample(float[] logits) {
    applyPenalties(logits);
    if (params.greedy()) {
      return argmax(logits);
    }
    float inv = (float) (1 / params.temperature());
    for (int i = 0; i < logits.length; i++) {
      logits[i] *= inv;
    }
    int[] candidates = candidates(logits);
    // Probabilities of the candidates (sorted by logit, descending), then top-p and min-p cuts.
    double max = logits[candidates[0]];
    double[] p = new double[candidates.length];
    double sum = 0;
    for (int i = 0; i < candidates.length; i++) {
      p[i] = Math.exp(logits[candidates[i]] - max);
      sum += p[i];
    }
    int keep = candidates.length;
    if (params.topP() < 1) {
      double cumulative = 0;
      for (int i = 0; i < candidates.length; i++) {
        cumulative += p[i] / sum;
        if (cumulative >= params.topP()) {
          keep = i + 1;
          break;
        }
      }
    }
    if (params.minP() > 0) {
      double threshold = params.minP() * p[0];
      int k = 1;
      while (k < keep && p[k] >= threshold) {
        k++;
      }
      keep = k;
    }
    double total = 0;
    for (int i = 0; i < keep; i++) {
      total += p[i];
    }
    double r = random.nextDouble() * total;
    for (int i = 0; i < keep; i++) {
      r -= p[i];
      if (r < 0) {
        return candidates[i];
      }
    }
    return candidates[keep - 1];
  }

  private void applyPenalties(float[] logits) {
    float rep = (float) params.repetitionPenalty();
    float freq = (float) params.frequencyPenalty(), presence = (float) params.presencePenalty();
    if (rep == 1 && freq == 0 && presence == 0) {
      return;
    }
    for (int i = 0; i < logits.length; i++) {
      if (seen[i] > 0 && rep != 1) {
        logits[i] = logits[i] < 0 ? logits[i] * rep : logits[i] / rep;
      }
      if (generated[i] > 0) {
        logits[i] -= freq * generated[i] + presence;
      }
    }
  }

  /** Token ids worth considering, most likely first: the top k, or every token. */
  private int[] candidates(float[] logits) {
    int n = logits.length;
    int k = params.topK() > 0 ? Math.min(params.topK(), n) : n;
    // Sort (logit, id) pairs packed into longs: descending logit, ties by ascending id.
    long[] keys = new long[n];
    for (int i = 0; i < n; i++) {
      int bits = Float.floatToIntBits(logits[i]);
      int ordered = bits >= 0 ? bits : bits ^ 0x7FFFFFFF; // monotone in the float value
      keys[i] = ((long) ~ordered << 32) | i;
    }
    Arrays.sort(keys);
    int[] ids = new int[k];
    for (int i = 0; i < k; i++) {
      ids[i] = (int) keys[i];
    }
    return ids;
  }

  /** The index of the largest value; the lowest index among equals, as torch.argmax. */
  public static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }
}
