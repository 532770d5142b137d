package dev.selma.engine.model;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named tensor in a model file: element type, shape and the bytes that hold it (usually a slice of
 * a memory-mapped file).
 *
 * <p>The shape is written outermost dimension first, as in PyTorch and safetensors: a linear layer's
 * weight is {@code [outFeatures, inFeatures]} and its rows are contiguous. (GGUF lists dimensions the
 * other way round; its reader flips them.) Quantized blocks run along the last dimension.
 */
public record Tensor(String name, GgmlType type, long[] shape, MemorySegment data) {

  public Tensor {
    shape = shape.clone();
    long expected = byteSize(type, shape);
    if (data.byteSize() != expected) {
      throw new IllegalArgumentException(
          "tensor '" + name + "' of type " + type + " and shape " + Arrays.toString(shape) + " needs "
              + expected + " bytes but has " + data.byteSize());
    }
  }

  /** Bytes taken by a tensor of this type and shape; rejects rows that do not hold whole blocks. */
  public static long byteSize(GgmlType type, long[] shape) {
    long elements = 1;
    for (long d : shape) {
      if (d <= 0) {
        throw new IllegalArgumentException("dimension " + d + " in shape " + Arrays.toString(shape));
      }
      elements = Math.multiplyExact(elements, d);
    }
    long rowLength = shape.length == 0 ? 1 : shape[shape.length - 1];
    if (!type.isValidRowLength(rowLength)) {
      throw new IllegalArgumentException(
          "row length " + rowLength + " is not a multiple of the " + type + " block size " + type.blockSize);
    }
    return type.bytesFor(elements);
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  public long dim(int i) {
    return shape[i];
  }

  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** Rows of a matrix (the product of all but the last dimension). */
  public long rows() {
    return elementCount() / cols();
  }

  /** Length of a row (the last dimension). */
  public long cols() {
    return shape.length == 0 ? 1 : shape[shape.length - 1];
  }

  @Override
  public String toString() {
    return name + " " + type + Arrays.toString(shape);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Tensor t && t.name.equals(name) && t.type == type && Arrays.equals(t.shape, shape)
        && t.data.equals(data);
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }
}
