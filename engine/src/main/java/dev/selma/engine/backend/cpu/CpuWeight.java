package dev.selma.engine.backend.cpu;

import dev.selma.engine.backend.Weight;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.MemorySegment;

/** A weight read in place from (usually memory-mapped) storage. */
record CpuWeight(String name, GgmlType type, int rows, int cols, MemorySegment data, long rowBytes)
    implements Weight {

  static CpuWeight of(Tensor t) {
    long cols = t.cols(), rows = t.rows();
    if (cols > Integer.MAX_VALUE || rows > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensor " + t + " is too large for the CPU backend");
    }
    return new CpuWeight(t.name(), t.type(), (int) rows, (int) cols, t.data(), t.type().bytesFor(cols));
  }
}
