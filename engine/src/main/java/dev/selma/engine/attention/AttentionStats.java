package dev.selma.engine.attention;

import java.util.Arrays;

/**
 * How often select-and-merge chose each key block, per layer: the raw material of attention-based
 * citations. A choice counts once per query token and KV head that read the block because of it
 * (sink, window and own blocks are read by position, not chosen, and do not count; nor does dense
 * attention, which chooses nothing). Recording costs one add per chosen block and plan entry.
 *
 * <p>Not thread-safe: one sequence records into it, one chunk at a time.
 */
public final class AttentionStats {
  private final int blockSize;
  private final long[][] counts; // [layer][block], grown on demand
  /** Delivers choices a backend recorded but has not handed over yet; run before any count is read. */
  private Runnable undelivered;

  public AttentionStats(int layers, int blockSize) {
    this.blockSize = blockSize;
    this.counts = new long[layers][0];
  }

  public int blockSize() {
    return blockSize;
  }

  public int layers() {
    return counts.length;
  }

  /** Adds the choices of one layer's plan. */
  public void record(int layer, AttentionPlan plan) {
    if (plan.blockSize() != blockSize) {
      throw new IllegalArgumentException("plan block size " + plan.blockSize() + " differs from the statistics' "
          + blockSize);
    }
    long[] c = counts[layer];
    for (int tile = 0; tile < plan.tiles(); tile++) {
      int queries = plan.tileEnd()[tile] - plan.tileStart()[tile];
      for (int h = 0; h < plan.kvHeads(); h++) {
        int e = plan.entry(tile, h);
        for (int i = plan.keyOffsets()[e]; i < plan.keyOffsets()[e + 1]; i++) {
          if (plan.keySelected()[i]) {
            int block = plan.keyBlocks()[i];
            if (block >= c.length) {
              c = Arrays.copyOf(c, Math.max(block + 1, c.length * 2));
              counts[layer] = c;
            }
            c[block] += queries;
          }
        }
      }
    }
  }

  /**
   * Adds choices made apart from a plan: one query token's chosen blocks in layer {@code layer}, one
   * entry per KV head and block (a GPU records a decode token's own choice once the ranking is back).
   */
  public void recordChoices(int layer, int[] blocks) {
    long[] c = counts[layer];
    for (int block : blocks) {
      if (block >= c.length) {
        c = Arrays.copyOf(c, Math.max(block + 1, c.length * 2));
        counts[layer] = c;
      }
      c[block]++;
    }
  }

  /**
   * Choices that a backend will hand over later (a GPU's, still on their way to the host): {@code
   * delivery} records them, waiting for them if it must, and runs before any count is read.
   */
  public void deliverLater(Runnable delivery) {
    undelivered = delivery;
  }

  private void settle() {
    Runnable r = undelivered;
    if (r != null) {
      undelivered = null;
      r.run();
    }
  }

  /** Choices of key block {@code block} in layer {@code layer}. */
  public long count(int layer, int block) {
    settle();
    return block < counts[layer].length ? counts[layer][block] : 0;
  }

  /**
   * Choices, in layer {@code layer}, of the blocks that overlap tokens {@code [from, to)} (a block that
   * straddles two ranges counts for both).
   */
  public long selections(int layer, int from, int to) {
    if (from < 0 || to < from) {
      throw new IllegalArgumentException("token range [" + from + ", " + to + ") is invalid");
    }
    if (from == to) {
      return 0;
    }
    settle();
    long[] c = counts[layer];
    long sum = 0;
    for (int block = from / blockSize, last = Math.min((to - 1) / blockSize, c.length - 1); block <= last; block++) {
      sum += c[block];
    }
    return sum;
  }

  /** {@link #selections(int, int, int)} summed over every layer. */
  public long selections(int from, int to) {
    long sum = 0;
    for (int l = 0; l < counts.length; l++) {
      sum += selections(l, from, to);
    }
    return sum;
  }

  /** Forgets every count (a new request on the same sequence). */
  public void clear() {
    settle();
    Arrays.setAll(counts, l -> new long[0]);
  }
}
