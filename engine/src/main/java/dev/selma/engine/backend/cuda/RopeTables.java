package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.Rope;
import java.lang.foreign.MemorySegment;

/**
 * A {@link Rope}'s cos/sin tables on the device, for the attention kernel (keys are rotated when
 * attention runs). Built exactly as {@code Rope} builds its own (same double-precision expressions,
 * then rounded to float), split at position {@code hi·SPLIT + lo}, so that the GPU rotates by the
 * same values as the CPU reference; the {@code hi} tables grow as positions grow.
 */
final class RopeTables implements AutoCloseable {
  static final int SPLIT = 1024;

  private final Rope rope;
  private final DeviceMemory memory;
  private final Staging staging;
  private final int half;
  private final double[] invFreq;
  private final DeviceBuffer loCos, loSin;
  private DeviceBuffer hiCos, hiSin;
  private int hiCount;

  RopeTables(Rope rope, DeviceMemory memory, Staging staging) {
    this.rope = rope;
    this.memory = memory;
    this.staging = staging;
    this.half = rope.headDim() / 2;
    this.invFreq = rope.inverseFrequencies();
    float[] c = new float[SPLIT * half], s = new float[SPLIT * half];
    for (int p = 0; p < SPLIT; p++) {
      for (int i = 0; i < half; i++) {
        double a = p * invFreq[i];
        c[p * half + i] = (float) Math.cos(a);
        s[p * half + i] = (float) Math.sin(a);
      }
    }
    loCos = upload(c, "RoPE tables");
    loSin = upload(s, "RoPE tables");
  }

  private DeviceBuffer upload(float[] values, String what) {
    DeviceBuffer b = memory.allocate(4L * values.length, what);
    staging.upload(MemorySegment.ofArray(values), b, 0);
    return b;
  }

  Rope rope() {
    return rope;
  }

  /** Makes the tables cover positions up to {@code maxPosition}. */
  void ensure(long maxPosition) {
    int need = (int) (maxPosition / SPLIT) + 1;
    if (need <= hiCount) {
      return;
    }
    int n = Math.max(need, hiCount * 2);
    float[] c = new float[n * half], s = new float[n * half];
    for (int h = 0; h < n; h++) {
      for (int i = 0; i < half; i++) {
        double a = (double) h * SPLIT * invFreq[i];
        c[h * half + i] = (float) Math.cos(a);
        s[h * half + i] = (float) Math.sin(a);
      }
    }
    releaseHi();
    hiCos = upload(c, "RoPE tables");
    hiSin = upload(s, "RoPE tables");
    hiCount = n;
  }

  long loCos() {
    return loCos.address();
  }

  long loSin() {
    return loSin.address();
  }

  long hiCos() {
    return hiCos.address();
  }

  long hiSin() {
    return hiSin.address();
  }

  private void releaseHi() {
    if (hiCos != null) {
      memory.release(hiCos);
      memory.release(hiSin);
    }
  }

  @Override
  public void close() {
    memory.release(loCos);
    memory.release(loSin);
    releaseHi();
  }
}
