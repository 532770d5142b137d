package dev.selma.engine.backend.cuda;

import java.lang.ref.Cleaner;
import dev.selma.engine.backend.Activations;

/**
 * Rows {@code [first, first + rows)} of a row-major fp32 matrix in device memory. Views share their
 * {@link Storage}; the device block goes back to the pool when the backend frees it, or else once no
 * view of it is reachable.
 */
record CudaActivations(Storage storage, int first, int rows, int cols) implements Activations {

  /** The device block behind a matrix and its views, and the action that gives it back, run once. */
  static final class Storage {
    final DeviceBuffer buffer;
    Cleaner.Cleanable release;

    Storage(DeviceBuffer buffer) {
      this.buffer = buffer;
    }
  }

  @Override
  public Activations rows(int from, int to) {
    if (from < 0 || to > rows || from > to) {
      throw new IndexOutOfBoundsException("rows [" + from + ", " + to + ") of " + rows);
    }
    return new CudaActivations(storage, first + from, to - from, cols);
  }

  /** Device address of row {@code row} of this view. */
  long address(int row) {
    return storage.buffer.address() + 4L * (first + row) * cols;
  }

  long address() {
    return address(0);
  }

  /** Byte offset of row {@code row} within the device block. */
  long offset(int row) {
    return 4L * (first + row) * cols;
  }

  long elements() {
    return (long) rows * cols;
  }
}
