package dev.selma.engine.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.backend.Logits;
import dev.selma.engine.backend.TopLogits;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {
  private static float[] randomLogits(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] l = new float[n];
    for (int i = 0; i < n; i++) {
      l[i] = (float) (r.nextGaussian() * 3);
    }
    return l;
  }

  @Test
  void greedyTakesTheFirstLargestLogit() {
    assertEquals(1, new Sampler(SamplingParams.GREEDY, 4, new int[0]).sample(new float[] {1, 5, 5, -2}));
  }

  @Test
  void theSameSeedGivesTheSameTokensAndAnotherSeedOthers() {
    SamplingParams p = SamplingParams.GREEDY.withTemperature(1.5).withSeed(42);
    int[] a = draw(p, 50), b = draw(p, 50), c = draw(p.withSeed(43), 50);
    assertEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(b));
    assertTrue(!java.util.Arrays.equals(a, c));
  }

  private static int[] draw(SamplingParams p, int n) {
    Sampler s = new Sampler(p, 100, new int[0]);
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = s.sample(randomLogits(100, i));
    }
    return out;
  }

  @Test
  void samplingFollowsTheSoftmaxDistribution() {
    float[] logits = {0, (float) Math.log(2), (float) Math.log(3), (float) Math.log(4)}; // p = 0.1 .. 0.4
    Sampler s = new Sampler(SamplingParams.GREEDY.withTemperature(1).withSeed(7), 4, new int[0]);
    int[] counts = new int[4];
    int n = 40_000;
    for (int i = 0; i < n; i++) {
      counts[s.sample(logits.clone())]++;
    }
    for (int i = 0; i < 4; i++) {
      assertEquals((i + 1) / 10.0, counts[i] / (double) n, 0.01, "token " + i);
    }
  }

  @Test
  void topKTopPAndMinPKeepOnlyTheirCandidates() {
    float[] logits = {0, (float) Math.log(2), (float) Math.log(3), (float) Math.log(4)};
    assertDrawsOnly(SamplingParams.GREEDY.withTemperature(1).withTopK(2), logits, 2, 3);
    // Sorted probabilities 0.4, 0.3, 0.2, 0.1: top-p 0.6 needs the first two.
    assertDrawsOnly(SamplingParams.GREEDY.withTemperature(1).withTopP(0.6), logits, 2, 3);
    assertDrawsOnly(SamplingParams.GREEDY.withTemperature(1).withTopP(0.75), logits, 1, 2, 3);
    // min-p 0.6 keeps tokens with p >= 0.24: 0.4 and 0.3.
    assertDrawsOnly(SamplingParams.GREEDY.withTemperature(1).withMinP(0.6), logits, 2, 3);
  }

  private static void assertDrawsOnly(SamplingParams p, float[] logits, int... allowed) {
    Sampler s = new Sampler(p.withSeed(3), logits.length, new int[0]);
    boolean[] seen = new boolean[logits.length];
    for (int i = 0; i < 2000; i++) {
      seen[s.sample(logits.clone())] = true;
    }
    for (int i = 0; i < logits.length; i++) {
      assertEquals(contains(allowed, i), seen[i], "token " + i);
    }
  }

  private static boolean contains(int[] a, int v) {
    for (int x : a) {
      if (x == v) {
        return true;
      }
    }
    return false;
  }

  @Test
  void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens() {
    Sampler s = new Sampler(SamplingParams.GREEDY.withRepetitionPenalty(2), 3, new int[] {0, 1});
    float[] logits = {4, -1, 3};
    assertEquals(2, s.sample(logits)); // 4/2 = 2 < 3
    assertEquals(2f, logits[0]);
    assertEquals(-2f, logits[1]);
    assertEquals(3f, logits[2]);
  }

  @Test
  void frequencyAndPresencePenaltiesApplyToGeneratedTokensOnly() {
    Sampler s = new Sampler(SamplingParams.GREEDY.withFrequencyPenalty(0.5).withPresencePenalty(0.25), 3,
        new int[] {2});
    s.accept(0);
    s.accept(0);
    float[] logits = {3, 2, 1};
    s.sample(logits);
    assertEquals(3 - 2 * 0.5f - 0.25f, logits[0]);
    assertEquals(2f, logits[1]);
    assertEquals(1f, logits[2]);
  }

  /**
   * Sampling from the largest logits alone (as a GPU hands them over) chooses the tokens that sorting
   * every logit chooses, and reads the whole row only when the rule's cut falls beyond the largest
   * {@link TopLogits#MAX_K}.
   */
  @Test
  void samplingFromTheLargestLogitsChoosesWhatSortingEveryLogitChooses() {
    SamplingParams t = SamplingParams.GREEDY.withSeed(5);
    record Case(SamplingParams params, double spread, boolean readsAll) {}
    Case[] cases = {
        new Case(t, 3, false),
        new Case(t.withTemperature(0.8).withTopK(40), 3, false),
        new Case(t.withTemperature(1).withTopK(TopLogits.MAX_K), 3, false),
        new Case(t.withTemperature(0.7).withTopP(0.9), 3, false),
        new Case(t.withTemperature(1).withMinP(0.05), 3, false),
        new Case(t.withTemperature(1.2).withTopP(0.95).withMinP(0.1), 3, false),
        new Case(t.withTemperature(1).withTopK(2000), 3, true), // more candidates than a GPU selects
        new Case(t.withTemperature(1.5).withTopP(0.99), 0.5, true), // a flat row: the cut is far down
        new Case(t.withTemperature(1), 3, true)}; // no cut: every token is a candidate
    for (Case c : cases) {
      int vocab = 32000;
      Sampler sampler = new Sampler(c.params(), vocab, new int[0]);
      SplittableRandom reference = new SplittableRandom(c.params().seed());
      int[] reads = new int[1];
      for (int step = 0; step < 40; step++) {
        float[] row = randomLogits(vocab, 100 + step);
        for (int i = 0; i < vocab; i++) {
          row[i] *= (float) (c.spread() / 3);
        }
        Logits counted = new Logits() {
          @Override
          public int vocabSize() {
            return vocab;
          }

          @Override
          public float[] all() {
            reads[0]++;
            return row.clone();
          }

          @Override
          public TopLogits top(int k, float inverseTemperature) {
            return TopLogits.of(row, k, inverseTemperature);
          }
        };
        assertEquals(referenceSample(c.params(), row, reference), sampler.sample(counted), c + " step " + step);
      }
      assertEquals(c.readsAll(), reads[0] > 0, c + " read every logit " + reads[0] + " times");
    }
  }

  /** Every logit sorted (descending, ties by id), then Hugging Face's processors in order, then one draw. */
  private static int referenceSample(SamplingParams p, float[] logits, SplittableRandom random) {
    Integer[] order = new Integer[logits.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    java.util.Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : a - b);
    if (p.greedy()) {
      return order[0];
    }
    float inv = (float) (1 / p.temperature());
    int n = p.topK() > 0 ? Math.min(p.topK(), order.length) : order.length;
    double[] prob = new double[n];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      prob[i] = Math.exp((double) (logits[order[i]] * inv) - (double) (logits[order[0]] * inv));
      sum += prob[i];
    }
    int keep = n;
    double cumulative = 0;
    for (int i = 0; i < n && p.topP() < 1; i++) {
      cumulative += prob[i] / sum;
      if (cumulative >= p.topP()) {
        keep = i + 1;
        break;
      }
    }
    int kept = 1;
    while (kept < keep && prob[kept] >= p.minP() * prob[0]) {
      kept++;
    }
    double total = 0;
    for (int i = 0; i < kept; i++) {
      total += prob[i];
    }
    double r = random.nextDouble() * total;
    for (int i = 0; i < kept; i++) {
      r -= prob[i];
      if (r < 0) {
        return order[i];
      }
    }
    return order[kept - 1];
  }

  @Test
  void invalidParametersAreRejectedWithTheirNames() {
    assertEquals("temperature must be >= 0, got -1.0",
        assertThrows(IllegalArgumentException.class, () -> SamplingParams.GREEDY.withTemperature(-1)).getMessage());
    assertThrows(IllegalArgumentException.class, () -> SamplingParams.GREEDY.withTopP(0));
    assertThrows(IllegalArgumentException.class, () -> SamplingParams.GREEDY.withTopK(-1));
    assertThrows(IllegalArgumentException.class, () -> SamplingParams.GREEDY.withMinP(1));
    assertThrows(IllegalArgumentException.class, () -> SamplingParams.GREEDY.withRepetitionPenalty(0));
    assertThrows(IllegalArgumentException.class, () -> SamplingParams.GREEDY.withPresencePenalty(3));
  }
}
