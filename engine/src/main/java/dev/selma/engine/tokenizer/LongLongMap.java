package dev.selma.engine.tokenizer;

import java.util.Arrays;

/**
 * An open-addressing hash map from non-negative {@code long} keys to {@code long} values, for the
 * lookups on BPE's hot path (merge pairs, characters) without boxing.
 */
final class LongLongMap {
  private static final long EMPTY = -1L;
  private final long[] keys;
  private final long[] values;
  private final int mask;
  private int size;

  LongLongMap(int expected) {
    int capacity = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
    keys = new long[capacity];
    values = new long[capacity];
    mask = capacity - 1;
    Arrays.fill(keys, EMPTY);
  }

  private int slot(long key) {
    long h = key * 0x9E3779B97F4A7C15L;
    return (int) (h ^ (h >>> 29)) & mask;
  }

  /** Sets {@code key} (>= 0) to {@code value}, replacing any earlier value. */
  void put(long key, long value) {
    int i = slot(key);
    while (keys[i] != EMPTY && keys[i] != key) {
      i = (i + 1) & mask;
    }
    if (keys[i] == EMPTY) {
      if (++size > keys.length * 3 / 4) {
        throw new IllegalStateException("LongLongMap sized for fewer entries");
      }
      keys[i] = key;
    }
    values[i] = value;
  }

  /** The value of {@code key}, or {@code missing}. */
  long get(long key, long missing) {
    int i = slot(key);
    long k;
    while ((k = keys[i]) != EMPTY) {
      if (k == key) {
        return values[i];
      }
      i = (i + 1) & mask;
    }
    return missing;
  }

  int size() {
    return size;
  }
}
