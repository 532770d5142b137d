package dev.selma.engine.tokenizer;

import java.util.Arrays;

/** A growable {@code int[]}: token ids are collected without boxing. */
final class IntArray {
  private int[] values;
  private int size;

  IntArray(int capacity) {
    values = new int[Math.max(capacity, 8)];
  }

  int size() {
    return size;
  }

  int get(int i) {
    return values[i];
  }

  void add(int v) {
    if (size == values.length) {
      values = Arrays.copyOf(values, values.length * 2);
    }
    values[size++] = v;
  }

  void addAll(int[] vs) {
    if (size + vs.length > values.length) {
      values = Arrays.copyOf(values, Math.max(values.length * 2, size + vs.length));
    }
    System.arraycopy(vs, 0, values, size, vs.length);
    size += vs.length;
  }

  int[] copyOfRange(int from, int to) {
    return Arrays.copyOfRange(values, from, to);
  }

  int[] toArray() {
    return Arrays.copyOf(values, size);
  }
}
