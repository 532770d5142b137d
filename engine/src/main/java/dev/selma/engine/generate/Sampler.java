package dev.selma.engine.generate;

import dev.selma.engine.backend.Logits;
import dev.selma.engine.backend.TopLogits;
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

  /** Chooses the next token from logits on the host; {@code logits} is modified. */
  public int sample(float[] logits) {
    applyPenalties(logits);
    return choose(Logits.of(logits));
  }

  /**
   * Chooses the next token from logits wherever they were computed. Only the candidates the rule can
   * keep are read: the largest k for greedy and top-k, the largest {@link TopLogits#MAX_K} and the
   * softmax's denominator for top-p and min-p; every logit when a penalty applies or the cut falls
   * further down. The candidates and their order are those of sorting every logit (descending, equal
   * logits by id); a top-p cut over the largest 1,024 divides by the backend's denominator, which a
   * GPU sums in float, so a cut within about 1e-6 of {@code topP} may fall one token apart.
   */
  public int sample(Logits logits) {
    if (penalised()) {
      float[] row = logits.all();
      applyPenalties(row);
      logits = Logits.of(row);
    }
    return choose(logits);
  }

  private int choose(Logits logits) {
    if (params.greedy()) {
      return logits.top(1, 0).ids()[0];
    }
    float inv = (float) (1 / params.temperature());
    int n = logits.vocabSize();
    int k = params.topK() > 0 ? Math.min(params.topK(), n) : n;
    if (k <= TopLogits.MAX_K) {
      return draw(logits.top(k, 0), inv, true);
    }
    if (k == n && (params.topP() < 1 || params.minP() > 0)) {
      int token = draw(logits.top(TopLogits.MAX_K, inv), inv, false);
      if (token >= 0) {
        return token;
      }
    }
    return draw(TopLogits.of(logits.all(), k, 0), inv, true);
  }

  /**
   * Draws from candidates (largest first) with probabilities at the temperature, cut by top-p and then
   * min-p. {@code complete}: the candidates are all there are (their sum is the denominator); else they
   * are the largest of a row whose denominator they carry, and -1 means the cut falls beyond them.
   */
  private int draw(TopLogits c, float inv, boolean complete) {
    int m = c.size();
    double max = c.values()[0] * inv;
    double[] p = new double[m];
    double sum = 0;
    for (int i = 0; i < m; i++) {
      p[i] = Math.exp((double) (c.values()[i] * inv) - max);
      sum += p[i];
    }
    double denominator = complete ? sum : c.expSum();
    int keep = complete ? m : Integer.MAX_VALUE;
    if (params.topP() < 1) {
      double cumulative = 0;
      for (int i = 0; i < m; i++) {
        cumulative += p[i] / denominator;
        if (cumulative >= params.topP()) {
          keep = i + 1;
          break;
        }
      }
    }
    if (params.minP() > 0) {
      double threshold = params.minP() * p[0];
      int j = 1;
      while (j < Math.min(keep, m) && p[j] >= threshold) {
        j++;
      }
      if (j < Math.min(keep, m)) {
        keep = j;
      }
    }
    if (keep > m) {
      return -1;
    }
    double total = 0;
    for (int i = 0; i < keep; i++) {
      total += p[i];
    }
    double r = random.nextDouble() * total;
    for (int i = 0; i < keep; i++) {
      r -= p[i];
      if (r < 0) {
        return c.ids()[i];
      }
    }
    return c.ids()[keep - 1];
  }

  /**
   * Whether every choice is the logits' greedy one, which a backend makes alone ({@link Logits#greedy}):
   * no temperature and no penalty.
   */
  public boolean greedy() {
    return params.greedy() && !penalised();
  }

  private boolean penalised() {
    return params.repetitionPenalty() != 1 || params.frequencyPenalty() != 0 || params.presencePenalty() != 0;
  }

  private void applyPenalties(float[] logits) {
    float rep = (float) params.repetitionPenalty();
    float freq = (float) params.frequencyPenalty(), presence = (float) params.presencePenalty();
    if (!penalised()) {
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
