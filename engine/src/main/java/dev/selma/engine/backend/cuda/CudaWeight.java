package dev.selma.engine.backend.cuda;

import dev.selma.engine.backend.Weight;
import dev.selma.engine.model.GgmlType;

/**
 * A weight in device memory, {@code rows × cols} elements of {@code type}: F32 or BF16 (other file
 * types are converted at load), or Q8_0 or Q4_0 kept quantized in {@code q8_0.cu}'s and {@code
 * q4_0.cu}'s layouts: the quants ({@code [rows][cols]} int8, or {@code [rows][cols / 2]} bytes of two
 * nibbles), then fp16 scales {@code [rows][cols / 32]} at {@link #scales()}.
 */
record CudaWeight(String name, GgmlType type, int rows, int cols, DeviceBuffer buffer) implements Weight {
  long address() {
    return buffer.address();
  }

  /** Device address of a quantized weight's scales. */
  long scales() {
    return buffer.address() + scalesOffset(type, rows, cols);
  }

  /** Whether weights of this file type stay quantized on the GPU (in bf16 mode). */
  static boolean keptQuantized(GgmlType type) {
    return type == GgmlType.Q8_0 || type == GgmlType.Q4_0;
  }

  /** Offset of a Q8_0 or Q4_0 weight's scales after its quants, on a 256-byte boundary. */
  static long scalesOffset(GgmlType type, long rows, long cols) {
    long quants = type == GgmlType.Q4_0 ? rows * cols / 2 : rows * cols;
    return (quants + 255) & -256L;
  }

  /** Bytes of a Q8_0 or Q4_0 weight on the device. */
  static long quantizedBytes(GgmlType type, long rows, long cols) {
    return scalesOffset(type, rows, cols) + rows * cols / 32 * 2;
  }

  /** The kernel-name stem of a quantized type: "q8_0", "q4_0". */
  static String stem(GgmlType type) {
    return type.name().toLowerCase(java.util.Locale.ROOT);
  }
}
