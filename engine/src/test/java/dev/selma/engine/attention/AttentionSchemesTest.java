package dev.selma.engine.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig.CrdNtk;
import dev.selma.engine.attention.AttentionConfig.Reindexed;
import dev.selma.engine.attention.AttentionConfig.SelfExtend;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Every attention plan and position scheme through the forward pass of a small random model. */
class AttentionSchemesTest {
  private static final CpuBackend BACKEND = new CpuBackend(2);
  private static final ModelConfig CONFIG = RandomModel.config(61, 32, 2, 4, 2, false);
  private static final LlamaWeights WEIGHTS = RandomModel.weights(CONFIG, 11);
  private static final Llama MODEL = new Llama(CONFIG, WEIGHTS, BACKEND);
  private static final int[] TOKENS = new SplittableRandom(12).ints(220, 0, CONFIG.vocabSize()).toArray();

  /** Small select-and-merge: 16-token blocks, groups of 2; from group 3 on, top-2 must choose. */
  private static final AttentionConfig SPARSE = AttentionConfig.selectAndMerge(16, 2, 2, 1, 1);

  /** One configuration of each plan and position scheme. */
  private static final List<AttentionConfig> ALL = List.of(
      AttentionConfig.dense(),
      AttentionConfig.dense().withPositions(new SelfExtend(4, 24)),
      AttentionConfig.dense().withPositions(new SelfExtend(3, 20)), // W not a multiple of G
      AttentionConfig.dense().withPositions(new CrdNtk(64, 4)),
      AttentionConfig.dense().withNtkScale(8),
      SPARSE,
      SPARSE.withPositions(new Reindexed()),
      SPARSE.withPositions(new SelfExtend(4, 24)),
      AttentionConfig.selectAndMerge(16, 3, 1, 0, 0).withPositions(new CrdNtk(64, 4)),
      AttentionConfig.selectAndMerge(32, 2, 3, 2, 0).withNtkScale(4),
      SPARSE.withSelection(AttentionConfig.Selection.BOUND),
      SPARSE.withSelection(AttentionConfig.Selection.BOUND).withPositions(new Reindexed()));

  @AfterAll
  static void close() {
    BACKEND.close();
  }

  private static float[][] prefill(Llama model, AttentionConfig config, int[] tokens, int maxChunk) {
    try (Sequence s = model.newSequence(256, maxChunk)) {
      s.attention(config);
      return s.appendAllLogits(tokens);
    }
  }

  /** Max |a − b| relative to max |a|. */
  private static float relativeDifference(float[] expected, float[] actual) {
    float scale = 0, diff = 0;
    for (int i = 0; i < expected.length; i++) {
      scale = Math.max(scale, Math.abs(expected[i]));
      diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
    }
    return diff / scale;
  }

  /**
   * Equal within 1e-5 relative. Not bitwise: the Vector API's lane reduction adds in a different
   * order once the JIT compiles it, so the same computation differs in the last bits between runs.
   */
  private static void assertClose(float[] expected, float[] actual, String what) {
    float rel = relativeDifference(expected, actual);
    assertTrue(rel <= 1e-5f, what + ": relative difference " + rel);
  }

  @Test
  void selectAndMergeWithATopKCoveringEveryBlockIsDense() {
    for (AttentionConfig.Positions p : List.of(new AttentionConfig.Original(), new SelfExtend(4, 24))) {
      float[][] dense = prefill(MODEL, AttentionConfig.dense().withPositions(p), TOKENS, 64);
      for (AttentionConfig sparse : List.of(AttentionConfig.selectAndMerge(16, 14, 2, 1, 1),
          AttentionConfig.selectAndMerge(16, 20, 1, 0, 0), AttentionConfig.selectAndMerge(64, 4, 1, 2, 3))) {
        for (AttentionConfig.Selection selection : AttentionConfig.Selection.values()) {
          float[][] got = prefill(MODEL, sparse.withPositions(p).withSelection(selection), TOKENS, 64);
          for (int t = 0; t < TOKENS.length; t++) {
            assertClose(dense[t], got[t], sparse + " token " + t);
          }
        }
      }
    }
  }

  @Test
  void selectionChangesTheOutputWhenTopKIsSmall() {
    float[][] dense = prefill(MODEL, AttentionConfig.dense(), TOKENS, 64);
    float[][] sparse = prefill(MODEL, SPARSE, TOKENS, 64);
    assertClose(dense[95], sparse[95], "groups 0-2 read every earlier block");
    assertTrue(relativeDifference(dense[219], sparse[219]) > 1e-3, "group 6 reads 6 of 14 blocks");
  }

  @Test
  void changingALaterTokenNeverChangesAnEarlierOutput() {
    int changed = 170;
    int[] other = TOKENS.clone();
    other[changed] = (other[changed] + 1) % CONFIG.vocabSize();
    for (AttentionConfig config : ALL) {
      float[][] a = prefill(MODEL, config, TOKENS, 64), b = prefill(MODEL, config, other, 64);
      for (int t = 0; t < changed; t++) {
        assertClose(a[t], b[t], config + " token " + t);
      }
      // A key that leaked into an earlier query would move it by its attention weight, O(1/t).
      assertTrue(relativeDifference(a[changed], b[changed]) > 1e-3, config + ": the changed token's own output");
    }
  }

  @Test
  void decodingWithTheCacheEqualsFullRecomputation() {
    for (AttentionConfig config : ALL) {
      float[][] full = prefill(MODEL, config, TOKENS, 256);
      try (Sequence s = MODEL.newSequence(256, 64)) {
        s.attention(config);
        s.append(Arrays.copyOf(TOKENS, 150));
        for (int t = 150; t < TOKENS.length; t++) {
          assertClose(full[t], s.append(new int[] {TOKENS[t]}), config + " token " + t);
        }
      }
    }
  }

  @Test
  void selfExtendWithGroupOneIsDense() {
    float[][] dense = prefill(MODEL, AttentionConfig.dense(), TOKENS, 64);
    float[][] g1 = prefill(MODEL, AttentionConfig.dense().withPositions(new SelfExtend(1, 24)), TOKENS, 64);
    for (int t = 0; t < TOKENS.length; t++) {
      assertClose(dense[t], g1[t], "token " + t);
    }
  }

  @Test
  void positionSchemesAreTheRopeTheyClaim() {
    float[][] dense = prefill(MODEL, AttentionConfig.dense(), TOKENS, 64);
    // A cycle longer than the sequence with no NTK scale changes nothing.
    float[][] longCycle = prefill(MODEL, AttentionConfig.dense().withPositions(new CrdNtk(1 << 20, 1)), TOKENS, 64);
    assertClose(dense[219], longCycle[219], "CRD with a period beyond the sequence");
    // A static NTK scale s is the same model with base · s^(d/(d−2)).
    double factor = AttentionConfig.dense().withNtkScale(8).ropeBaseFactor(CONFIG.headDim());
    ModelConfig rebased = new ModelConfig(CONFIG.architecture(), CONFIG.vocabSize(), CONFIG.hiddenSize(),
        CONFIG.intermediateSize(), CONFIG.numLayers(), CONFIG.numHeads(), CONFIG.numKvHeads(), CONFIG.headDim(),
        CONFIG.rmsNormEps(), CONFIG.ropeTheta() * factor, CONFIG.ropeScaling(), CONFIG.maxPositionEmbeddings(),
        CONFIG.attentionBias(), CONFIG.tieWordEmbeddings(), CONFIG.ropeStyle());
    float[][] ntk = prefill(MODEL, AttentionConfig.dense().withNtkScale(8), TOKENS, 64);
    float[][] base = prefill(new Llama(rebased, WEIGHTS, BACKEND), AttentionConfig.dense(), TOKENS, 64);
    assertClose(base[219], ntk[219], "static NTK");
    assertTrue(relativeDifference(dense[219], ntk[219]) > 1e-3, "the NTK base matters");
  }

  @Test
  void truncatingInsideABlockThenAppendingEqualsAFreshSequence() {
    int[] tail = new SplittableRandom(13).ints(17, 0, CONFIG.vocabSize()).toArray();
    int[] expectedTokens = Arrays.copyOf(TOKENS, 203 + tail.length);
    System.arraycopy(tail, 0, expectedTokens, 203, tail.length);
    float[][] expected = prefill(MODEL, SPARSE, expectedTokens, 64);
    try (Sequence s = MODEL.newSequence(256, 64)) {
      s.attention(SPARSE);
      s.append(TOKENS);
      s.truncate(203); // inside a 16-token granule: the cache keeps 192 and 11 tokens are recomputed
      assertEquals(203, s.length());
      float[][] got = s.appendAllLogits(tail);
      for (int i = 0; i < tail.length; i++) {
        assertClose(expected[203 + i], got[i], "token " + (203 + i));
      }
    }
  }

  @Test
  void statisticsCountChosenBlocksPerQueryTokenAndKvHead() {
    AttentionStats prefilled, decoded;
    try (Sequence s = MODEL.newSequence(256, 64)) {
      s.attention(SPARSE);
      s.append(TOKENS);
      prefilled = s.attentionStats();
    }
    try (Sequence s = MODEL.newSequence(256, 64)) {
      s.attention(SPARSE);
      s.append(Arrays.copyOf(TOKENS, 100));
      for (int t = 100; t < TOKENS.length; t++) {
        s.append(new int[] {TOKENS[t]});
      }
      decoded = s.attentionStats();
    }
    // Group 2 (tokens 64-95) reads its 2 candidates; groups 3-6 (tokens 96-219) choose 2 each;
    // per layer and KV head: 32·2 + 124·2 = 312 choices.
    assertEquals(2 * 2 * 312, prefilled.selections(0, TOKENS.length));
    for (int layer = 0; layer < 2; layer++) {
      assertEquals(2 * 312, prefilled.selections(layer, 0, TOKENS.length));
      for (int block = 0; block < 14; block++) {
        assertEquals(prefilled.count(layer, block), decoded.count(layer, block), "block " + block);
      }
    }
    assertEquals(0, prefilled.selections(0, 16), "the sink is read, not chosen");
    assertEquals(prefilled.count(1, 3) + prefilled.count(1, 4), prefilled.selections(1, 50, 65));
    try (Sequence s = MODEL.newSequence(256, 64)) {
      s.append(TOKENS);
      assertEquals(0, s.attentionStats().selections(0, TOKENS.length), "dense attention chooses nothing");
    }
  }
}
