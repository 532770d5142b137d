package dev.selma.engine.backend.cuda;

import dev.selma.engine.backend.Weight;
import dev.selma.engine.model.GgmlType;

/**
 * A weight in device memory, {@code rows × cols} elements of {@code type} (F32 or BF16: other file
 * types are converted at load).
 */
record CudaWeight(String name, GgmlType type, int rows, int cols, DeviceBuffer buffer) implements Weight {
  long address() {
    return buffer.address();
  }
}
