package dev.selma.engine.backend.cpu;

import dev.selma.engine.backend.Activations;

/** Rows {@code [offset/cols, offset/cols + rows)} of a float array. */
record CpuActivations(float[] data, int offset, int rows, int cols) implements Activations {

  CpuActivations(int rows, int cols) {
    this(new float[Math.multiplyExact(rows, cols)], 0, rows, cols);
  }

  @Override
  public Activations rows(int from, int to) {
    if (from < 0 || to > rows || from > to) {
      throw new IndexOutOfBoundsException("rows [" + from + ", " + to + ") of " + rows);
    }
    return new CpuActivations(data, offset + from * cols, to - from, cols);
  }

  /** Index of element (row, col) in {@link #data}. */
  int at(int row, int col) {
    return offset + row * cols + col;
  }
}
