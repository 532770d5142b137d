package dev.selma.engine.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig.Reindexed;
import dev.selma.engine.attention.AttentionPlanner.BlockScorer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class AttentionPlannerTest {

  /** Deterministic pseudo-random scores of (head, query block, key block). */
  private static final BlockScorer HASHED = (head, queryBlock, from, to, dst) -> {
    for (int j = from; j < to; j++) {
      long h = (head * 1_000_003L + queryBlock) * 998_244_353L + j * 1_000_000_007L;
      h ^= h >>> 29;
      h *= 0xbf58476d1ce4e5b9L;
      dst[j - from] = (float) ((h >>> 40) / (double) (1L << 24));
    }
  };

  /** The key blocks of (tile, head) of a plan. */
  private static int[] blocks(AttentionPlan p, int tile, int head) {
    int e = p.entry(tile, head);
    return Arrays.copyOfRange(p.keyBlocks(), p.keyOffsets()[e], p.keyOffsets()[e + 1]);
  }

  /** The tile of a plan that holds query token t. */
  private static int tileOf(AttentionPlan p, int t) {
    for (int i = 0; i < p.tiles(); i++) {
      if (p.tileStart()[i] <= t && t < p.tileEnd()[i]) {
        return i;
      }
    }
    throw new AssertionError("no tile holds token " + t);
  }

  @Test
  void denseReadsEveryBlockUpToTheChunk() {
    AttentionPlan p = AttentionPlanner.plan(AttentionConfig.dense(), 100, 40, 2, HASHED);
    assertEquals(1, p.tiles());
    assertEquals(100, p.tileStart()[0]);
    assertEquals(140, p.tileEnd()[0]);
    assertArrayEquals(new int[] {0, 1, 2}, blocks(p, 0, 1)); // 64-token blocks: tokens [0, 192)
    assertEquals(0, p.queryShift()[1]);
    assertFalse(p.keySelected()[0]);
  }

  @Test
  void aTopKCoveringEveryCandidateReadsEveryEarlierBlock() {
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 1000, 3, 1, 2);
    AttentionPlan p = AttentionPlanner.plan(c, 0, 1000, 2, HASHED);
    for (int tile = 0; tile < p.tiles(); tile++) {
      int last = (p.tileEnd()[tile] - 1) / 16;
      assertArrayEquals(IntStream.rangeClosed(0, last).toArray(), blocks(p, tile, 0), "tile " + tile);
    }
  }

  @Test
  void groupsReadSinksChosenBlocksWindowAndTheirOwnBlocks() {
    // merge 2, top 3: group g = blocks [2g, 2g+2); selection by blocks 2g-2 and 2g-1.
    BlockScorer scorer = (head, queryBlock, from, to, dst) -> {
      int[] best = queryBlock == 8 ? new int[] {5, 6, 7} : new int[] {6, 3, 2};
      for (int j = from; j < to; j++) {
        int rank = Arrays.stream(best).boxed().toList().indexOf(j);
        dst[j - from] = rank < 0 ? -j : 100 - rank;
      }
    };
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 3, 2, 1, 1);
    AttentionPlan p = AttentionPlanner.plan(c, 10 * 16, 5, 1, scorer); // group 5: blocks 10, 11
    // Candidates [1, 9); rank-interleaved: 5 (block 8's first), 6 (block 9's first), then 6 again
    // (a duplicate), 3 (block 9's second): three reached. Window: block 9; own: block 10.
    assertArrayEquals(new int[] {0, 3, 5, 6, 9, 10}, blocks(p, 0, 0));
    boolean[] chosen = Arrays.copyOfRange(p.keySelected(), 0, 6);
    assertArrayEquals(new boolean[] {false, true, true, true, false, false}, chosen);
  }

  @Test
  void choicesUseOnlyQueryBlocksBeforeTheGroupAndKeyBlocksBeforeItsWindow() {
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 4, 4, 1, 2); // groups of 64 tokens
    List<int[]> asked = new ArrayList<>();
    BlockScorer recording = (head, queryBlock, from, to, dst) -> {
      asked.add(new int[] {queryBlock, from, to});
      HASHED.score(head, queryBlock, from, to, dst);
    };
    for (int t = 0; t < 3000; t += 7) {
      asked.clear();
      AttentionPlanner.plan(c, t, 1, 2, recording);
      int first = t / 64 * 4;
      for (int[] a : asked) {
        assertTrue(first - 4 <= a[0] && a[0] < first, "query block " + a[0] + " selects for token " + t);
        assertEquals(1, a[1], "candidates start after the sink");
        assertEquals(first - 2, a[2], "candidates end at the window");
      }
      assertEquals(first - 2 - 1 > 4 ? 2 * 4 : 0, asked.size(), "scores only when top-k must choose");
    }
  }

  @Test
  void underQuerySelectionADecodeTokenRanksWithItsOwnQueryAndLongerChunksWithTheBlocksBefore() {
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 4, 4, 1, 2).withSelection(AttentionConfig.Selection.QUERY);
    List<int[]> asked = new ArrayList<>();
    BlockScorer recording = (head, queryBlock, from, to, dst) -> {
      asked.add(new int[] {queryBlock, from, to});
      HASHED.score(head, queryBlock, from, to, dst);
    };
    for (int t = 0; t < 3000; t += 7) {
      int first = t / 64 * 4;
      boolean chooses = first - 2 - 1 > 4;
      assertEquals(chooses, c.tokenChooses(t), "token " + t);
      asked.clear();
      AttentionPlan p = AttentionPlanner.plan(c, t, 1, 2, recording);
      assertEquals(chooses ? 2 : 0, asked.size(), "one ranking per KV head, only when top-k must choose");
      for (int[] a : asked) {
        assertArrayEquals(new int[] {AttentionPlanner.TOKEN, 1, first - 2}, a, "token " + t);
      }
      if (chooses) {
        // The token's own top 4 of the candidates, ascending, then the window and its own blocks.
        float[] scores = new float[first - 3];
        HASHED.score(1, AttentionPlanner.TOKEN, 1, first - 2, scores);
        int[] best = IntStream.range(0, scores.length).boxed()
            .sorted((a, b) -> Float.compare(scores[b], scores[a])).limit(4).mapToInt(i -> i + 1).sorted().toArray();
        int[] expected = IntStream.concat(IntStream.concat(IntStream.of(0), Arrays.stream(best)),
            IntStream.rangeClosed(first - 2, t / 16)).toArray();
        assertArrayEquals(expected, blocks(p, 0, 1), "token " + t);
      }
      // A longer chunk chooses as BOUND does, with the blocks before each group.
      asked.clear();
      AttentionPlanner.plan(c, t, 2, 2, recording);
      assertTrue(asked.stream().allMatch(a -> a[0] >= 0), "token " + t);
    }
  }

  @Test
  void listedBlocksAreAscendingBoundedAndNeverAfterTheTilesLastQuery() {
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 4, 4, 1, 2);
    for (int start = 0; start < 3000; start += 37) {
      AttentionPlan p = AttentionPlanner.plan(c, start, 37, 2, HASHED);
      for (int tile = 0; tile < p.tiles(); tile++) {
        for (int h = 0; h < 2; h++) {
          int[] b = blocks(p, tile, h);
          assertTrue(b[b.length - 1] == (p.tileEnd()[tile] - 1) / 16, "up to the last query's block");
          for (int i = 1; i < b.length; i++) {
            assertTrue(b[i - 1] < b[i], "ascending, no duplicates");
          }
          assertTrue(b.length <= c.gatheredBlocks());
        }
      }
    }
  }

  @Test
  void everyChunkingGivesATokenTheSameKeysAndPositions() {
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 3, 2, 1, 1).withPositions(new Reindexed());
    AttentionPlan whole = AttentionPlanner.plan(c, 0, 700, 2, HASHED);
    for (int t = 300; t < 700; t += 13) {
      AttentionPlan decode = AttentionPlanner.plan(c, t, 1, 2, HASHED);
      int wt = tileOf(whole, t);
      for (int h = 0; h < 2; h++) {
        int[] wb = blocks(whole, wt, h), db = blocks(decode, 0, h);
        // The whole-prefill tile may list later own blocks; the decode step lists up to t's block.
        assertArrayEquals(Arrays.copyOf(wb, db.length), db, "token " + t);
        assertEquals(whole.queryShift()[whole.entry(wt, h)], decode.queryShift()[decode.entry(0, h)]);
      }
    }
  }

  @Test
  void reindexedDistancesNeverExceedTheGatheredSpanOverLongInputs() {
    // 100K tokens: 6,250 blocks, almost all beyond a 1,024-token trained window.
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 48, 8, 2, 6).withPositions(new Reindexed());
    int trained = 1024, span = (int) c.gatheredBlocks() * 16;
    assertEquals(trained, span);
    int maxSeen = 0, length = 100_000;
    for (int start = 0; start < length; ) {
      int n = start < length - 200 ? 997 : 1; // long chunks, then decode steps
      n = Math.min(n, length - start);
      AttentionPlan p = AttentionPlanner.plan(c, start, n, 2, HASHED);
      for (int tile = 0; tile < p.tiles(); tile++) {
        for (int h = 0; h < 2; h++) {
          int e = p.entry(tile, h), from = p.keyOffsets()[e];
          for (int t = p.tileStart()[tile]; t < p.tileEnd()[tile]; t++) {
            long query = t + (long) p.queryShift()[e];
            // Every key a query sees: the listed blocks' tokens not after it.
            long farthest = 0, nearest = Long.MAX_VALUE;
            for (int i = from; i < p.keyOffsets()[e + 1]; i++) {
              int blockStart = p.keyBlocks()[i] * 16;
              for (int j = blockStart; j < blockStart + 16 && j <= t; j++) {
                long d = query - (p.keyPositions()[i] + j - blockStart);
                assertTrue(d >= 0, "a key after its query");
                farthest = Math.max(farthest, d);
                nearest = Math.min(nearest, d);
              }
            }
            assertEquals(0, nearest, "the query sees itself at distance 0");
            assertTrue(farthest < trained, "distance " + farthest + " at token " + t);
            maxSeen = (int) Math.max(maxSeen, farthest);
          }
        }
      }
      start += n;
    }
    assertEquals(trained - 1, maxSeen); // the bound is reached: the last query of a full group
  }

  /**
   * A group with more candidates than top-k chooses exactly k blocks, whatever the selecting blocks'
   * lists are: each list holds k distinct blocks, so their union holds at least k. A GPU relies on it to
   * lay out a prefill plan before its ranking is known (group_plan_blocks fills in the choice). The
   * lists here overlap as much as they can (the same k blocks, rotated) and as little (disjoint).
   */
  @Test
  void aGroupWithMoreCandidatesThanTopKChoosesExactlyK() {
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 5, 4, 1, 2);
    for (boolean disjoint : new boolean[] {false, true}) {
      AttentionPlanner.BlockRanker ranker = (head, queryBlock, from, to, k) -> {
        int[] best = new int[k];
        for (int r = 0; r < k; r++) {
          best[r] = disjoint ? from + (queryBlock * k + r) % (to - from) : from + (queryBlock + r) % k;
        }
        return best;
      };
      for (int start = 0; start < 4000; start += 333) {
        AttentionPlan p = AttentionPlanner.plan(c, start, 333, 2, ranker);
        for (int tile = 0; tile < p.tiles(); tile++) {
          int first = p.tileStart()[tile] / (c.merge() * c.blockSize()) * c.merge();
          int windowStart = Math.max(0, first - c.windowBlocks());
          int candidates = windowStart - Math.min(c.sinkBlocks(), windowStart);
          for (int h = 0; h < 2; h++) {
            int e = p.entry(tile, h), chosen = 0;
            for (int i = p.keyOffsets()[e]; i < p.keyOffsets()[e + 1]; i++) {
              chosen += p.keySelected()[i] ? 1 : 0;
            }
            assertEquals(Math.min(candidates, c.topK()), chosen, "group at block " + first);
          }
        }
      }
    }
  }
}
