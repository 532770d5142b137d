package dev.selma.engine.attention;

/**
 * What one layer's attention over one chunk computes, as plain arrays an executor (CPU or CUDA)
 * runs without knowing how the plan was made.
 *
 * <p>The chunk's queries are split into <em>tiles</em>: consecutive query tokens that read the same
 * key blocks (a whole chunk under dense attention, one query group under select-and-merge). For tile
 * {@code t} and KV head {@code h}, entry {@code e = t·kvHeads + h} lists key blocks {@code
 * keyBlocks[keyOffsets[e] .. keyOffsets[e+1])} in ascending order. A query reads the tokens of those
 * blocks that are not after it (the causal mask) and not beyond {@code keyLength}.
 *
 * <p>Positions are <em>logical</em> first: key token {@code j} of the {@code i}-th listed block has
 * logical position {@code keyPositions[i] + j − block·blockSize}, query token {@code q} has {@code q +
 * queryShift[e]}. {@link PositionMap} turns logical positions into the positions RoPE rotates to.
 *
 * @param blockSize tokens per key block
 * @param keyLength tokens in the cache including the chunk; keys from here on do not exist yet
 * @param kvHeads KV heads (a query head reads the entries of its KV head)
 * @param tileStart first query token of each tile (absolute index in the sequence)
 * @param tileEnd one past the last query token of each tile
 * @param keyOffsets {@code tiles·kvHeads + 1} offsets into the per-key-block arrays
 * @param keyBlocks key block indices
 * @param keyPositions logical position of each listed block's first token
 * @param keySelected whether a listed block was chosen by correlation (not a sink, window or own block)
 * @param queryShift logical minus original position of the queries of each entry
 * @param positionMap how logical positions become RoPE positions
 */
public record AttentionPlan(
    int blockSize,
    int keyLength,
    int kvHeads,
    int[] tileStart,
    int[] tileEnd,
    int[] keyOffsets,
    int[] keyBlocks,
    int[] keyPositions,
    boolean[] keySelected,
    int[] queryShift,
    PositionMap positionMap) {

  public int tiles() {
    return tileStart.length;
  }

  /** Index of (tile, KV head) in {@link #keyOffsets} and {@link #queryShift}. */
  public int entry(int tile, int kvHead) {
    return tile * kvHeads + kvHead;
  }

  /**
   * Logical positions to RoPE positions: Self-Extend's two branches and CRD NTK's cycle.
   *
   * @param groupSize Self-Extend's G (1 when not used)
   * @param neighbourWindow Self-Extend's W; 0 = no Self-Extend, one branch only
   * @param period positions are taken modulo this; 0 = no cycle
   */
  public record PositionMap(int groupSize, int neighbourWindow, int period) {
    public static final PositionMap IDENTITY = new PositionMap(1, 0, 0);

    public static PositionMap of(AttentionConfig.Positions p) {
      return switch (p) {
        case AttentionConfig.SelfExtend se -> new PositionMap(se.groupSize(), se.window(), 0);
        case AttentionConfig.CrdNtk crd -> new PositionMap(1, 0, crd.period());
        case AttentionConfig.Original o -> IDENTITY;
        case AttentionConfig.Reindexed r -> IDENTITY;
      };
    }

    public boolean selfExtend() {
      return neighbourWindow > 0;
    }

    /** The RoPE position of a logical position on the neighbour (exact) branch. */
    public long neighbour(long logical) {
      return period > 0 ? logical % period : logical;
    }

    /** Whether a query-key pair this far apart (logical) uses the grouped branch. */
    public boolean grouped(long distance) {
      return neighbourWindow > 0 && distance >= neighbourWindow;
    }

    /** Self-Extend's grouped query position {@code i/G + W − W/G}, shifted so the branches meet at W. */
    public long groupedQuery(long logical) {
      return logical / groupSize + neighbourWindow - neighbourWindow / groupSize;
    }

    /** Self-Extend's grouped key position {@code j/G}. */
    public long groupedKey(long logical) {
      return logical / groupSize;
    }
  }
}
