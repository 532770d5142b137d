package dev.selma.engine.attention;

import dev.selma.engine.attention.AttentionConfig.Reindexed;
import dev.selma.engine.attention.AttentionConfig.Scheme;
import java.util.Arrays;

/**
 * Builds the {@link AttentionPlan} of one layer for one chunk from an {@link AttentionConfig}.
 *
 * <h2>Select-and-merge, made causal</h2>
 *
 * Query blocks are grouped {@code merge} at a time, from the start of the sequence: group {@code g} is
 * blocks {@code [g·merge, (g+1)·merge)}. Each group reads
 * <ul>
 *   <li>the sink blocks {@code [0, sinkBlocks)},
 *   <li>up to {@code topK} <em>chosen</em> blocks among the candidates {@code [sinkBlocks, first −
 *       windowBlocks)} ({@code first} = the group's first block),
 *   <li>the window {@code [first − windowBlocks, first)} and the group's own blocks, causally masked.
 * </ul>
 * The choice follows the authors' code: each selecting query block ranks the candidates by the dot
 * product of its query mean with their key means and keeps its top {@code topK}; the lists are
 * interleaved by rank (every block's first, then every block's second, ...), de-duplicated, and cut at
 * {@code topK}.
 *
 * <p>The selecting query blocks are the {@code merge} blocks <em>before</em> the group, not the
 * group's own blocks as in the authors' (training-time) code. With the group's own queries, a token's
 * keys would depend on later tokens of its group, and decoding one token at a time would choose
 * differently from a prefill of the same text. Choosing with the preceding blocks keeps attention
 * causal and makes every chunking, decode included, compute the same thing; the cost is a lag of
 * one group, which the window and the group's own blocks (read densely) cover. The lag matters at the
 * end of a prompt: the question sits in the last group, whose blocks are chosen by the text before
 * it. Under {@link AttentionConfig.Selection#QUERY} a chunk of one token ranks the candidates with
 * its own query instead, one list, no interleaving; a sequence asks for it only for decode steps (the
 * prompt's last token run alone included), whose tokens then compute differently than in a prefill.
 *
 * <p>GQA: the query heads of a KV head share its choice, scored with the mean of their query means.
 * The dot product is linear, so this ranks exactly as the sum of the heads' scores would.
 *
 * <p>When the candidates are no more than {@code topK}, all are read and no scores are computed:
 * with a large enough {@code topK} select-and-merge is dense attention.
 */
public final class AttentionPlanner {
  private AttentionPlanner() {}

  /**
   * The {@code queryBlock} that stands for the chunk's one token, when it chooses with its own query
   * ({@link AttentionConfig#tokenChooses}).
   */
  public static final int TOKEN = -1;

  /** Correlation scores of block means, computed by the backend that holds them. */
  public interface BlockScorer {
    /**
     * Writes {@code dot(queryMean(kvHead, queryBlock), keyMean(kvHead, j))} (or the bound score) to
     * {@code dst[j − from]} for every key block {@code j} in {@code [from, to)}; for {@link #TOKEN}, the
     * mean of the chunk's one token's query heads of {@code kvHead}. Only complete blocks are asked for.
     */
    void score(int kvHead, int queryBlock, int from, int to, float[] dst);
  }

  /**
   * Select-and-merge's ranking, for backends that rank where the scores are (a GPU): the {@code k}
   * best-scoring key blocks of {@code [from, to)} for one selecting query block, best first, ties to
   * the earlier block, exactly as {@link #plan(AttentionConfig, int, int, int, BlockScorer)} ranks the
   * scores of a {@link BlockScorer}.
   */
  public interface BlockRanker {
    /** Called only when {@code to − from > k}; the result has {@code k} blocks. */
    int[] best(int kvHead, int queryBlock, int from, int to, int k);
  }

  /**
   * The plan of one layer for the chunk of tokens {@code [chunkStart, chunkStart + chunkLength)},
   * whose keys are already in the cache.
   *
   * @param scorer scores of complete blocks; not called under dense attention
   */
  public static AttentionPlan plan(AttentionConfig config, int chunkStart, int chunkLength, int kvHeads,
      BlockScorer scorer) {
    return plan(config, chunkStart, chunkLength, kvHeads, rankingOnTheHost(scorer));
  }

  /**
   * The same plan, with the candidates ranked by {@code ranker}.
   *
   * @param ranker the best blocks for a selecting query block; not called under dense attention
   */
  public static AttentionPlan plan(AttentionConfig config, int chunkStart, int chunkLength, int kvHeads,
      BlockRanker ranker) {
    if (chunkStart < 0 || chunkLength < 1) {
      throw new IllegalArgumentException("chunk [" + chunkStart + ", +" + chunkLength + ") is empty or negative");
    }
    int b = config.blockSize(), keyLength = chunkStart + chunkLength;
    boolean tokenChooses = chunkLength == 1 && config.tokenChooses(chunkStart);
    int groupTokens = config.scheme() == Scheme.DENSE ? Integer.MAX_VALUE : config.merge() * b;
    int firstGroup = config.scheme() == Scheme.DENSE ? 0 : chunkStart / groupTokens;
    int lastGroup = config.scheme() == Scheme.DENSE ? 0 : (keyLength - 1) / groupTokens;
    int tiles = lastGroup - firstGroup + 1;

    Builder out = new Builder(tiles, kvHeads);
    for (int g = firstGroup; g <= lastGroup; g++) {
      int tile = g - firstGroup;
      int qs = config.scheme() == Scheme.DENSE ? chunkStart : Math.max(chunkStart, g * groupTokens);
      int qe = config.scheme() == Scheme.DENSE ? keyLength : (int) Math.min(keyLength, (long) (g + 1) * groupTokens);
      out.tileStart[tile] = qs;
      out.tileEnd[tile] = qe;
      int lastBlock = (qe - 1) / b;
      for (int h = 0; h < kvHeads; h++) {
        if (config.scheme() == Scheme.DENSE) {
          out.entry(config, 0, 0, new int[0], lastBlock);
        } else {
          int first = g * config.merge();
          int windowStart = Math.max(0, first - config.windowBlocks());
          int sinks = Math.min(config.sinkBlocks(), windowStart);
          int[] chosen = choose(config, ranker, h, first, sinks, windowStart, tokenChooses);
          out.entry(config, sinks, windowStart, chosen, lastBlock);
        }
      }
    }
    return out.build(b, keyLength, kvHeads, AttentionPlan.PositionMap.of(config.positions()));
  }

  /** The chosen blocks among candidates {@code [from, to)}, ascending. */
  private static int[] choose(AttentionConfig config, BlockRanker ranker, int kvHead, int firstOfGroup, int from,
      int to, boolean tokenChooses) {
    int candidates = to - from, k = config.topK();
    if (candidates <= 0) {
      return new int[0];
    }
    if (candidates <= k) {
      int[] all = new int[candidates];
      Arrays.setAll(all, i -> from + i);
      return all;
    }
    if (tokenChooses) {
      int[] chosen = ranker.best(kvHead, TOKEN, from, to, k);
      Arrays.sort(chosen);
      return chosen;
    }
    // Candidates exist only when the group starts past them, so the selecting blocks before it are complete.
    int selectingFrom = Math.max(0, firstOfGroup - config.merge());
    int selecting = firstOfGroup - selectingFrom;
    int[][] ranked = new int[selecting][];
    for (int r = 0; r < selecting; r++) {
      ranked[r] = ranker.best(kvHead, selectingFrom + r, from, to, k);
    }
    // Rank-interleaved, de-duplicated union, cut at k (the authors' extract_unique_elements).
    int[] chosen = new int[k];
    int n = 0;
    boolean[] taken = new boolean[candidates];
    for (int rank = 0; rank < k && n < k; rank++) {
      for (int r = 0; r < selecting && n < k; r++) {
        int block = ranked[r][rank];
        if (!taken[block - from]) {
          taken[block - from] = true;
          chosen[n++] = block;
        }
      }
    }
    Arrays.sort(chosen, 0, n);
    return Arrays.copyOf(chosen, n);
  }

  /** Ranks on the host the scores of {@code scorer}. */
  private static BlockRanker rankingOnTheHost(BlockScorer scorer) {
    return (kvHead, queryBlock, from, to, k) -> {
      float[] scores = new float[to - from];
      scorer.score(kvHead, queryBlock, from, to, scores);
      return topK(scores, from, k, new long[to - from]);
    };
  }

  /** The {@code k} best-scoring blocks, best first; ties go to the earlier block. */
  private static int[] topK(float[] scores, int from, int k, long[] keys) {
    for (int i = 0; i < keys.length; i++) {
      // Sort key: the score's bits made order-preserving as a signed int, then the index reversed.
      int bits = Float.floatToIntBits(scores[i]);
      int ordered = bits >= 0 ? bits : bits ^ Integer.MAX_VALUE;
      keys[i] = ((long) ordered << 32) | (0xffffffffL - i);
    }
    Arrays.sort(keys);
    int[] best = new int[k];
    for (int r = 0; r < k; r++) {
      best[r] = from + (int) (0xffffffffL - (keys[keys.length - 1 - r] & 0xffffffffL));
    }
    return best;
  }

  /** Accumulates the entries of a plan. */
  private static final class Builder {
    final int[] tileStart, tileEnd, keyOffsets, queryShift;
    int[] keyBlocks = new int[64], keyPositions = new int[64];
    boolean[] keySelected = new boolean[64];
    int entries, size;

    Builder(int tiles, int kvHeads) {
      tileStart = new int[tiles];
      tileEnd = new int[tiles];
      keyOffsets = new int[tiles * kvHeads + 1];
      queryShift = new int[tiles * kvHeads];
    }

    /**
     * Adds the next entry: sinks {@code [0, sinks)}, the chosen blocks, then {@code [windowStart,
     * lastBlock]} (the window and the group's own blocks, up to the tile's last query).
     */
    void entry(AttentionConfig config, int sinks, int windowStart, int[] chosen, int lastBlock) {
      int b = config.blockSize();
      boolean reindexed = config.positions() instanceof Reindexed;
      int need = size + sinks + chosen.length + (lastBlock - windowStart + 1);
      if (need > keyBlocks.length) {
        int cap = Math.max(need, keyBlocks.length * 2);
        keyBlocks = Arrays.copyOf(keyBlocks, cap);
        keyPositions = Arrays.copyOf(keyPositions, cap);
        keySelected = Arrays.copyOf(keySelected, cap);
      }
      int start = size;
      for (int j = 0; j < sinks; j++) {
        add(j, false);
      }
      for (int j : chosen) {
        add(j, true);
      }
      for (int j = windowStart; j <= lastBlock; j++) {
        add(j, false);
      }
      // Blocks are listed in original order; only the last can be partial, so re-indexed blocks
      // start b apart and the queries, in the last blocks, keep their offsets within them.
      for (int i = start; i < size; i++) {
        keyPositions[i] = reindexed ? (i - start) * b : keyBlocks[i] * b;
      }
      queryShift[entries] = keyPositions[size - 1] - lastBlock * b;
      keyOffsets[++entries] = size;
    }

    private void add(int block, boolean selected) {
      keyBlocks[size] = block;
      keySelected[size] = selected;
      size++;
    }

    AttentionPlan build(int blockSize, int keyLength, int kvHeads, AttentionPlan.PositionMap map) {
      return new AttentionPlan(blockSize, keyLength, kvHeads, tileStart, tileEnd, keyOffsets,
          Arrays.copyOf(keyBlocks, size), Arrays.copyOf(keyPositions, size), Arrays.copyOf(keySelected, size),
          queryShift, map);
    }
  }
}
