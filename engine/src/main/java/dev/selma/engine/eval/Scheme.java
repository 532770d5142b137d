package dev.selma.engine.eval;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.SelfExtendProposal;
import java.util.Locale;

/**
 * Named attention configurations for evaluations, sized from the model's trained window L and the
 * prompt length N so that one name means the same policy at every length.
 */
public enum Scheme {
  /** Dense attention at original positions: the baseline that fails beyond L. */
  DENSE,
  /** Dense attention with Self-Extend, G and W proposed by the authors' rule for N. */
  SELF_EXTEND,
  /**
   * Dense attention with CRD NTK positions as the demo training script trains them: positions modulo
   * twice the trained window (its cyclic period), the NTK scale already in the model's RoPE base.
   */
  CRD_NTK,
  /** Select-and-merge at original positions. */
  SELECT_MERGE,
  /** Select-and-merge with the gathered keys re-indexed to consecutive positions. */
  SELECT_MERGE_REINDEXED,
  /** Select-and-merge with Self-Extend positions. */
  SELECT_MERGE_SELF_EXTEND,
  /** Select-and-merge with blocks ranked by key bounds (Selection.BOUND), re-indexed positions. */
  SELECT_MERGE_BOUND_REINDEXED,
  /** Select-and-merge with blocks ranked by key bounds (Selection.BOUND), Self-Extend positions. */
  SELECT_MERGE_BOUND_SELF_EXTEND,
  /** As SELECT_MERGE_BOUND_REINDEXED, with decode steps ranking by their own query (Selection.QUERY). */
  SELECT_MERGE_QUERY_REINDEXED;

  /**
   * The configuration for prompts of {@code length} tokens on a model trained on {@code trainedWindow},
   * select-and-merge in blocks of {@code blockSize} tokens.
   */
  public AttentionConfig config(int length, int trainedWindow, int blockSize) {
    return config(length, trainedWindow, blockSize, trainedWindow);
  }

  /**
   * As {@link #config(int, int, int)}, with select-and-merge gathering about {@code span} tokens (sinks,
   * chosen blocks and the local window) instead of the trained window's worth.
   */
  public AttentionConfig config(int length, int trainedWindow, int blockSize, int span) {
    AttentionConfig sm = AttentionConfig.selectAndMergeWithin(span, blockSize);
    return switch (this) {
      case DENSE -> AttentionConfig.dense();
      case SELF_EXTEND -> AttentionConfig.dense().withPositions(selfExtend(length, trainedWindow));
      case CRD_NTK -> AttentionConfig.dense().withPositions(new AttentionConfig.CrdNtk(2 * trainedWindow, 1));
      case SELECT_MERGE -> sm;
      case SELECT_MERGE_REINDEXED -> sm.withPositions(new AttentionConfig.Reindexed());
      case SELECT_MERGE_SELF_EXTEND -> sm.withPositions(selfExtend(length, trainedWindow));
      case SELECT_MERGE_BOUND_REINDEXED -> sm.withSelection(AttentionConfig.Selection.BOUND)
          .withPositions(new AttentionConfig.Reindexed());
      case SELECT_MERGE_BOUND_SELF_EXTEND -> sm.withSelection(AttentionConfig.Selection.BOUND)
          .withPositions(selfExtend(length, trainedWindow));
      case SELECT_MERGE_QUERY_REINDEXED -> sm.withSelection(AttentionConfig.Selection.QUERY)
          .withPositions(new AttentionConfig.Reindexed());
    };
  }

  private static AttentionConfig.SelfExtend selfExtend(int length, int trainedWindow) {
    SelfExtendProposal p = SelfExtendProposal.propose(length, trainedWindow);
    return new AttentionConfig.SelfExtend(p.groupSize(), p.window());
  }

  public String label() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  public static Scheme parse(String label) {
    for (Scheme s : values()) {
      if (s.label().equals(label)) {
        return s;
      }
    }
    throw new IllegalArgumentException("unknown scheme '" + label + "'; use one of " + String.join(", ",
        java.util.Arrays.stream(values()).map(Scheme::label).toList()));
  }
}
