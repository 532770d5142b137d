package dev.selma.engine.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Decodes one row of a weight into floats, for each element type. Block layouts are documented on
 * {@link dev.selma.engine.model.GgmlType}; the scalar reference they are tested against is the model
 * package's dequantizer.
 */
final class RowDecoder {
  private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private static final VectorSpecies<Float> F = VectorMath.F;
  /** Bytes with as many lanes as {@link #F}, widened to floats lane by lane. */
  private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(F.length() * 8));

  private RowDecoder() {}

  /** Writes row {@code row} of {@code w} to {@code dst[off, off + w.cols())}. */
  static void decode(CpuWeight w, int row, float[] dst, int off) {
    MemorySegment s = w.data();
    long base = row * w.rowBytes();
    int n = w.cols();
    switch (w.type()) {
      case F32 -> MemorySegment.copy(s, F32, base, dst, off, n);
      case F16 -> {
        for (int i = 0; i < n; i++) {
          dst[off + i] = Float.float16ToFloat(s.get(I16, base + 2L * i));
        }
      }
      case BF16 -> {
        for (int i = 0; i < n; i++) {
          dst[off + i] = Float.intBitsToFloat(s.get(I16, base + 2L * i) << 16);
        }
      }
      case Q8_0 -> q8_0(s, base, n, dst, off);
      case Q4_0 -> q4_0(s, base, n, dst, off);
      case Q4_K -> q4_K(s, base, n, dst, off);
      case Q6_K -> q6_K(s, base, n, dst, off);
    }
  }

  private static float f16(MemorySegment s, long at) {
    return Float.float16ToFloat(s.get(I16, at));
  }

  private static int u8(MemorySegment s, long at) {
    return s.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
  }

  private static void q8_0(MemorySegment s, long base, int n, float[] dst, int off) {
    for (int b = 0; b < n / 32; b++) {
      long at = base + 34L * b;
      FloatVector d = FloatVector.broadcast(F, f16(s, at));
      int o = off + 32 * b;
      for (int j = 0; j < 32; j += F.length()) {
        ByteVector q = ByteVector.fromMemorySegment(B, s, at + 2 + j, ByteOrder.LITTLE_ENDIAN);
        ((FloatVector) q.convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(dst, o + j);
      }
    }
  }

  private static void q4_0(MemorySegment s, long base, int n, float[] dst, int off) {
    for (int b = 0; b < n / 32; b++) {
      long at = base + 18L * b;
      float d = f16(s, at);
      int o = off + 32 * b;
      for (int j = 0; j < 16; j++) {
        int q = u8(s, at + 2 + j);
        dst[o + j] = d * ((q & 0xF) - 8);
        dst[o + j + 16] = d * ((q >>> 4) - 8);
      }
    }
  }

  /** Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed into 12 bytes. */
  private static void q4_K(MemorySegment s, long base, int n, float[] dst, int off) {
    for (int b = 0; b < n / 256; b++) {
      long at = base + 144L * b;
      float d = f16(s, at), dmin = f16(s, at + 2);
      long scales = at + 4, qs = at + 16;
      int o = off + 256 * b;
      for (int j = 0; j < 4; j++) { // 64 elements per step: low nibbles, then high nibbles
        int sub = 2 * j;
        float d1 = d * scale(s, scales, sub), m1 = dmin * min(s, scales, sub);
        float d2 = d * scale(s, scales, sub + 1), m2 = dmin * min(s, scales, sub + 1);
        long q = qs + 32L * j;
        int oo = o + 64 * j;
        for (int l = 0; l < 32; l++) {
          int v = u8(s, q + l);
          dst[oo + l] = d1 * (v & 0xF) - m1;
          dst[oo + 32 + l] = d2 * (v >>> 4) - m2;
        }
      }
    }
  }

  private static int scale(MemorySegment s, long scales, int j) {
    return j < 4
        ? u8(s, scales + j) & 63
        : (u8(s, scales + j + 4) & 0xF) | ((u8(s, scales + j - 4) >>> 6) << 4);
  }

  private static int min(MemorySegment s, long scales, int j) {
    return j < 4
        ? u8(s, scales + j + 4) & 63
        : (u8(s, scales + j + 4) >>> 4) | ((u8(s, scales + j) >>> 6) << 4);
  }

  /** Q6_K: 4-bit low parts, 2-bit high parts, 16 signed 8-bit sub-block scales, one f16 scale. */
  private static void q6_K(MemorySegment s, long base, int n, float[] dst, int off) {
    for (int b = 0; b < n / 256; b++) {
      long at = base + 210L * b;
      long ql = at, qh = at + 128, sc = at + 192;
      float d = f16(s, at + 208);
      int o = off + 256 * b;
      for (int half = 0; half < 2; half++) { // 128 elements each
        long l0 = ql + 64L * half, h0 = qh + 32L * half, s0 = sc + 8L * half;
        int oo = o + 128 * half;
        for (int l = 0; l < 32; l++) {
          int is = l / 16;
          int h = u8(s, h0 + l);
          int a = u8(s, l0 + l), c = u8(s, l0 + l + 32);
          int q1 = ((a & 0xF) | ((h & 3) << 4)) - 32;
          int q2 = ((c & 0xF) | (((h >>> 2) & 3) << 4)) - 32;
          int q3 = ((a >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
          int q4 = ((c >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
          dst[oo + l] = d * s.get(ValueLayout.JAVA_BYTE, s0 + is) * q1;
          dst[oo + l + 32] = d * s.get(ValueLayout.JAVA_BYTE, s0 + is + 2) * q2;
          dst[oo + l + 64] = d * s.get(ValueLayout.JAVA_BYTE, s0 + is + 4) * q3;
          dst[oo + l + 96] = d * s.get(ValueLayout.JAVA_BYTE, s0 + is + 6) * q4;
        }
      }
    }
  }
}
