package dev.selma.engine.backend.cuda;

import dev.selma.engine.backend.Weight;
import dev.selma.engine.model.GgmlType;

/**
 * A weight in device memory, {@code rows × cols} elements of {@code type}: F32 or BF16 (other file
 * types are converted at load), or Q8_0, Q4_0 or Q4_K kept quantized in {@code q8_0.cu}'s, {@code
 * q4_0.cu}'s and {@code q4_k.cu}'s layouts: the quants ({@code [rows][cols]} int8, or {@code [rows][cols
 * / 2]} bytes of two nibbles), then at {@link #scales()} each block's scales (an fp16 per 32 elements, or
 * Q4_K's 16 bytes per 256: d, dmin and the packed 6-bit scales and mins).
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
    return type == GgmlType.Q8_0 || type == GgmlType.Q4_0 || type == GgmlType.Q4_K;
  }

  /** Elements of a block of a kept-quantized type: 32, or a Q4_K super-block's 256. */
  static int blockElements(GgmlType type) {
    return type == GgmlType.Q4_K ? 256 : 32;
  }

  /** Bytes of a block's quants on the device. */
  static int blockQuantBytes(GgmlType type) {
    return type == GgmlType.Q8_0 ? 32 : blockElements(type) / 2;
  }

  /** Bytes of a block's scales on the device. */
  static int blockScaleBytes(GgmlType type) {
    return type == GgmlType.Q4_K ? 16 : 2;
  }

  /** Offset of a kept-quantized weight's scales after its quants, on a 256-byte boundary. */
  static long scalesOffset(GgmlType type, long rows, long cols) {
    long quants = rows * cols / blockElements(type) * blockQuantBytes(type);
    return (quants + 255) & -256L;
  }

  /** Bytes of a kept-quantized weight on the device. */
  static long quantizedBytes(GgmlType type, long rows, long cols) {
    return scalesOffset(type, rows, cols) + rows * cols / blockElements(type) * blockScaleBytes(type);
  }

  /** The kernel-name stem of a quantized type: "q8_0", "q4_0", "q4_k". */
  static String stem(GgmlType type) {
    return type.name().toLowerCase(java.util.Locale.ROOT);
  }
}
