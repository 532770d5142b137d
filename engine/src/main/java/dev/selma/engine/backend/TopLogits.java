package dev.selma.engine.backend;

import java.util.PriorityQueue;

/**
 * The largest logits of one row, what a sampler needs of a vocabulary-sized row: token ids and their
 * logits, largest first (equal logits by ascending id, as {@code torch.topk} on a stable sort), and the
 * softmax denominator of the whole row, {@code Σ exp(x·t − max·t)} for an inverse temperature t (0 when
 * not asked for). Floats are ordered by value, with −0 below +0 and NaN above +∞.
 *
 * <p>{@link #of} is the definition; a backend may compute the same where the logits are ({@code
 * logits_top.cu}), with the denominator to float precision.
 */
public record TopLogits(int[] ids, float[] values, double expSum) {
  /**
   * The most candidates a backend computes where the logits are: more than any top-k in use, and in most
   * rows more than top-p keeps.
   */
  public static final int MAX_K = 1024;

  public int size() {
    return ids.length;
  }

  /** The {@code k} largest of {@code row} ({@code 1 ≤ k ≤ row.length}). */
  public static TopLogits of(float[] row, int k, float inverseTemperature) {
    if (k < 1 || k > row.length) {
      throw new IllegalArgumentException("top " + k + " of " + row.length + " logits");
    }
    int[] ids = new int[k];
    if (16L * k > row.length) {
      long[] keys = new long[row.length];
      for (int i = 0; i < row.length; i++) {
        keys[i] = key(row[i], i);
      }
      java.util.Arrays.sort(keys);
      for (int i = 0; i < k; i++) {
        ids[i] = (int) keys[i];
      }
    } else {
      // A heap of the k best keys so far, worst on top: O(n log k) where sorting a 128K vocabulary
      // for every token would cost milliseconds.
      PriorityQueue<Long> best = new PriorityQueue<>(k, (a, b) -> Long.compare(b, a));
      for (int i = 0; i < row.length; i++) {
        long key = key(row[i], i);
        if (best.size() < k) {
          best.add(key);
        } else if (key < best.peek()) {
          best.poll();
          best.add(key);
        }
      }
      for (int i = k - 1; i >= 0; i--) {
        ids[i] = (int) (long) best.poll();
      }
    }
    float[] values = new float[k];
    for (int i = 0; i < k; i++) {
      values[i] = row[ids[i]];
    }
    double sum = 0;
    if (inverseTemperature != 0) {
      float shift = values[0] * inverseTemperature;
      for (float v : row) {
        sum += Math.exp((double) (v * inverseTemperature) - shift);
      }
    }
    return new TopLogits(ids, values, sum);
  }

  /** A key that sorts ascending as (logit descending, id ascending). */
  static long key(float value, int id) {
    int bits = Float.floatToRawIntBits(value);
    int ordered = bits >= 0 ? bits : bits ^ 0x7FFFFFFF; // monotone in the float value
    return ((long) ~ordered << 32) | id;
  }
}
