package dev.selma.engine.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.model.ModelConfig;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class SequenceTest {
  private static final CpuBackend BACKEND = new CpuBackend(2);

  @AfterAll
  static void close() {
    BACKEND.close();
  }

  private static int[] randomTokens(int n, int vocab, long seed) {
    return new SplittableRandom(seed).ints(n, 0, vocab).toArray();
  }

  private static float maxAbsDiff(float[] a, float[] b) {
    float m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }

  private static float maxAbs(float[] a) {
    float m = 0;
    for (float v : a) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  @Test
  void decodingWithTheCacheEqualsFullRecomputation() {
    for (boolean bias : new boolean[] {false, true}) {
      ModelConfig c = RandomModel.config(97, 32, 2, 4, 2, bias);
      Llama model = new Llama(c, RandomModel.weights(c, 1), BACKEND);
      int[] tokens = randomTokens(40, c.vocabSize(), 2);
      float[][] full;
      try (Sequence s = model.newSequence(64, 64)) {
        full = s.appendAllLogits(tokens);
      }
      try (Sequence s = model.newSequence(64, 64)) {
        s.append(Arrays.copyOf(tokens, 25));
        for (int i = 25; i < tokens.length; i++) {
          float[] logits = s.append(new int[] {tokens[i]});
          assertEquals(0, maxAbsDiff(full[i], logits), 1e-5f * maxAbs(full[i]), "token " + i);
        }
        assertArrayEquals(tokens, s.tokens());
      }
    }
  }

  @Test
  void chunkedPrefillEqualsOneChunk() {
    ModelConfig c = RandomModel.config(61, 32, 2, 4, 1, false);
    Llama model = new Llama(c, RandomModel.weights(c, 3), BACKEND);
    int[] tokens = randomTokens(300, c.vocabSize(), 4); // spans two KV pages
    float[] whole, chunked;
    try (Sequence s = model.newSequence(300, 300)) {
      whole = s.append(tokens);
    }
    try (Sequence s = model.newSequence(300, 7)) {
      chunked = s.append(tokens);
    }
    assertEquals(0, maxAbsDiff(whole, chunked), 1e-5f * maxAbs(whole));
  }

  @Test
  void truncateThenAppendEqualsAFreshSequence() {
    ModelConfig c = RandomModel.config(61, 32, 2, 4, 2, false);
    Llama model = new Llama(c, RandomModel.weights(c, 5), BACKEND);
    int[] a = randomTokens(270, c.vocabSize(), 6), b = randomTokens(20, c.vocabSize(), 7);
    float[] expected;
    try (Sequence s = model.newSequence(512, 64)) {
      int[] ab = Arrays.copyOf(a, 280);
      System.arraycopy(b, 0, ab, 260, 20);
      expected = s.append(ab);
    }
    try (Sequence s = model.newSequence(512, 64)) {
      s.append(a);
      s.truncate(260);
      float[] got = s.append(b);
      assertEquals(0, maxAbsDiff(expected, got), 1e-5f * maxAbs(expected));
    }
  }

  @Test
  void overCapacityAndBadTokensAreRejected() {
    ModelConfig c = RandomModel.config(61, 32, 1, 4, 2, false);
    Llama model = new Llama(c, RandomModel.weights(c, 8), BACKEND);
    try (Sequence s = model.newSequence(10, 4)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.append(new int[11]));
      assertEquals("sequence of 11 tokens exceeds the capacity of 10", e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> s.append(new int[] {61}));
    }
  }
}
