package dev.selma.engine.backend.cuda;

import dev.selma.engine.backend.Weight;
import dev.selma.engine.model.GgmlType;

/**
 * A weight in device memory, {@code rows × cols} elements of {@code type}: F32 or BF16 (other file
 * types are converted at load), or Q8_0 kept quantized in {@code q8_0.cu}'s layout: int8 quants
 * {@code [rows][cols]}, then fp16 scales {@code [rows][cols / 32]} at {@link #q8Scales()}.
 */
record CudaWeight(String name, GgmlType type, int rows, int cols, DeviceBuffer buffer) implements Weight {
  long address() {
    return buffer.address();
  }

  /** Device address of a Q8_0 weight's scales. */
  long q8Scales() {
    return buffer.address() + q8ScalesOffset(rows, cols);
  }

  /** Offset of a Q8_0 weight's scales after its quants, on a 256-byte boundary. */
  static long q8ScalesOffset(long rows, long cols) {
    return (rows * cols + 255) & -256L;
  }

  /** Bytes of a Q8_0 weight on the device. */
  static long q8Bytes(long rows, long cols) {
    return q8ScalesOffset(rows, cols) + rows * cols / 32 * 2;
  }
}
