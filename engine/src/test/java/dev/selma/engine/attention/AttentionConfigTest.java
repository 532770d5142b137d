package dev.selma.engine.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig.CrdNtk;
import dev.selma.engine.attention.AttentionConfig.Original;
import dev.selma.engine.attention.AttentionConfig.Reindexed;
import dev.selma.engine.attention.AttentionConfig.Scheme;
import dev.selma.engine.attention.AttentionConfig.SelfExtend;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class AttentionConfigTest {

  private static void rejects(String message, Executable e) {
    assertEquals(message, assertThrows(IllegalArgumentException.class, e).getMessage());
  }

  @Test
  void selectionsAreNamedCaseInsensitivelyAndAnUnknownNameListsTheKnownOnes() {
    for (AttentionConfig.Selection sel : AttentionConfig.Selection.values()) {
      assertEquals(sel, AttentionConfig.Selection.named(sel.label().toUpperCase(java.util.Locale.ROOT)));
    }
    assertEquals("unknown selection 'best'; use mean, bound or query", assertThrows(IllegalArgumentException.class,
        () -> AttentionConfig.Selection.named("best")).getMessage());
    assertFalse(AttentionConfig.Selection.MEAN.bounds());
    assertTrue(AttentionConfig.Selection.QUERY.bounds());
  }

  @Test
  void invalidParametersAreRejectedNamingTheParameter() {
    rejects("block_size must be a power of two >= 16, got 48", () -> AttentionConfig.selectAndMerge(48, 4, 2, 1, 1));
    rejects("block_size must be a power of two >= 16, got 8", () -> AttentionConfig.selectAndMerge(8, 4, 2, 1, 1));
    rejects("top_k must be >= 1, got 0", () -> AttentionConfig.selectAndMerge(64, 0, 2, 1, 1));
    rejects("merge must be >= 1, got 0", () -> AttentionConfig.selectAndMerge(64, 4, 0, 1, 1));
    rejects("sink_blocks must be >= 0, got -1", () -> AttentionConfig.selectAndMerge(64, 4, 2, -1, 1));
    rejects("window_blocks must be >= 0, got -2", () -> AttentionConfig.selectAndMerge(64, 4, 2, 1, -2));
    rejects("ntk_scale must be a finite number >= 1, got 0.5", () -> AttentionConfig.dense().withNtkScale(0.5));
    rejects("self_extend.group_size (G) must be >= 1, got 0",
        () -> AttentionConfig.dense().withPositions(new SelfExtend(0, 512)));
    rejects("self_extend.window (W) must be >= 1, got 0",
        () -> AttentionConfig.dense().withPositions(new SelfExtend(4, 0)));
    rejects("crd_ntk.period must be >= 1, got 0", () -> AttentionConfig.dense().withPositions(new CrdNtk(0, 4)));
    rejects("crd_ntk.ntk_scale must be a finite number >= 1, got NaN",
        () -> AttentionConfig.dense().withPositions(new CrdNtk(32768, Double.NaN)));
    rejects("ntk_scale must be 1 with crd_ntk positions, which carry their own NTK scale (crd_ntk.ntk_scale)",
        () -> AttentionConfig.dense().withNtkScale(2).withPositions(new CrdNtk(32768, 4)));
    rejects("re-indexed positions need scheme select-and-merge: under dense attention every key is gathered,"
        + " so re-indexing changes nothing", () -> AttentionConfig.dense().withPositions(new Reindexed()));
    rejects("attention scheme, positions and selection must be given",
        () -> new AttentionConfig(Scheme.DENSE, 64, 1, 1, 0, 0, null, 1));
    rejects("attention scheme, positions and selection must be given",
        () -> new AttentionConfig(Scheme.DENSE, 64, 1, 1, 0, 0, new AttentionConfig.Original(), 1, null));
  }

  @Test
  void modelDependentLimitsAreCheckedAgainstTheTrainedWindow() {
    ModelConfig model = RandomModel.config(61, 32, 1, 4, 2, false); // trained window 4096
    AttentionConfig fits = AttentionConfig.selectAndMerge(64, 56, 4, 1, 3).withPositions(new Reindexed());
    assertSame(fits, fits.validateFor(model)); // (1 + 56 + 3 + 4) · 64 = 4096
    rejects("re-indexed positions span (sink_blocks + top_k + window_blocks + merge) · block_size = 4160 tokens,"
        + " beyond the model's trained window of 4096",
        () -> AttentionConfig.selectAndMerge(64, 57, 4, 1, 3).withPositions(new Reindexed()).validateFor(model));
    rejects("self_extend.window (W) must be below the model's trained window of 4096 tokens, got 4096",
        () -> AttentionConfig.dense().withPositions(new SelfExtend(4, 4096)).validateFor(model));
  }

  @Test
  void ntkBaseFactorIsScaleToTheDOverDMinusTwo() {
    assertEquals(1, AttentionConfig.dense().ropeBaseFactor(128));
    assertEquals(Math.pow(8, 128 / 126.0), AttentionConfig.dense().withNtkScale(8).ropeBaseFactor(128), 1e-12);
    assertEquals(Math.pow(4096, 64 / 62.0),
        AttentionConfig.dense().withPositions(new CrdNtk(32768, 4096)).ropeBaseFactor(64), 1e-9);
    assertEquals(new Original(), AttentionConfig.dense().positions());
  }

  @Test
  void selfExtendProposalFollowsTheReadmeRule() {
    // The README's example: 15,800 tokens on Llama-2 (4,096), W = 1,024.
    SelfExtendProposal p = SelfExtendProposal.propose(15_800, 4096);
    assertEquals(1024, p.window());
    assertEquals(15, p.groupSize()); // 1024 + 14776/15 = 2009 < 2048 = L/2; G = 14 gives 2079
    assertTrue(p.reachable());
    assertTrue(1024 + (15_800 - 1024) / 15.0 < 4096 / 2.0);

    // Too far for the safe bound with G <= 64, within the loose one.
    SelfExtendProposal loose = SelfExtendProposal.propose(80_000, 4096);
    assertTrue(loose.reachable());
    assertTrue(loose.groupSize() <= SelfExtendProposal.MAX_GROUP);
    assertTrue(1024 + (80_000 - 1024.0) / loose.groupSize() < 2 * 4096 / 3.0);
    assertTrue(1024 + (80_000 - 1024.0) / (loose.groupSize() - 1) >= 2 * 4096 / 3.0);

    SelfExtendProposal fits = SelfExtendProposal.propose(3000, 4096);
    assertEquals(1, fits.groupSize());
    assertTrue(fits.reachable());

    SelfExtendProposal far = SelfExtendProposal.propose(1_000_000, 4096);
    assertFalse(far.reachable());
    assertEquals("out of reach: 1000000 tokens need G = 586 > 64 to keep W + (N - W)/G below 2/3 of the trained"
        + " window 4096", far.explanation());
  }
}
