package dev.selma.engine.model;

import static dev.selma.engine.model.LittleEndian.FLOAT;
import static dev.selma.engine.model.LittleEndian.SHORT;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import java.lang.foreign.MemorySegment;

/**
 * Reference scalar conversion between floats and every {@link GgmlType}: dequantization of rows and
 * quantization of rows. This class is the definition of what a tensor's bytes mean; the matmul
 * kernels are tested against it, so it favours obviously-correct code over speed.
 *
 * <p>Dequantization follows ggml's formulas operation by operation (in float arithmetic, same order),
 * so results are bit-identical to ggml's scalar {@code dequantize_row_*}. The block layouts are
 * described on {@link GgmlType}; the K-quant details:
 *
 * <ul>
 *   <li>Q4_K (144 bytes per 256 elements): f16 {@code d}, f16 {@code dmin}, 12 bytes of eight 6-bit
 *       scales {@code sc[j]} and eight 6-bit mins {@code m[j]}, 128 bytes of nibbles. For j &lt; 4,
 *       {@code sc[j]} and {@code m[j]} are the low 6 bits of bytes j and j+4; for j ≥ 4 their low 4
 *       bits are the low and high nibble of byte j+4 and their high 2 bits are the top bits of bytes
 *       j−4 and j. The elements come in four chunks of 64: chunk c uses nibble byte {@code 32c + l}
 *       (low nibble for element {@code 64c + l} with sub-block 2c, high nibble for element {@code 64c
 *       + 32 + l} with sub-block 2c+1). x = (d·sc)·q − (dmin·m).
 *   <li>Q6_K (210 bytes per 256 elements): 128 bytes {@code ql}, 64 bytes {@code qh}, 16 int8 scales,
 *       f16 {@code d}. Each half h of 128 elements uses {@code ql[64h..64h+63]} and {@code
 *       qh[32h..32h+31]}; for l &lt; 32, elements {@code l, l+32, l+64, l+96} of the half take the
 *       low nibble of {@code ql[l]}, the low nibble of {@code ql[l+32]}, the high nibble of {@code
 *       ql[l]}, the high nibble of {@code ql[l+32]} as their low 4 bits and bits 0–1, 2–3, 4–5, 6–7 of
 *       {@code qh[l]} as their high 2 bits. Element e uses scale {@code e/16}. x = (d·sc)·(q − 32).
 * </ul>
 *
 * <p>Quantizers: F16 and BF16 round to nearest even (BF16 quiets NaNs), Q8_0 and Q4_0 reproduce ggml's
 * reference quantizers bit for bit, Q4_K and Q6_K use a simple per-sub-block scale search (not ggml's
 * iterative one): their output is valid and decodes within about half a quantization step, but is not
 * byte-identical to llama.cpp's.
 */
public final class Quants {
  private static final int QK_K = 256;

  private Quants() {}

  /**
   * Dequantizes {@code n} elements (a multiple of the type's block size) that start at byte {@code
   * srcOffset} of {@code src} into {@code dst[dstOffset..dstOffset+n)}.
   */
  public static void dequantize(GgmlType type, MemorySegment src, long srcOffset, float[] dst, int dstOffset,
      int n) {
    if (n % type.blockSize != 0) {
      throw new IllegalArgumentException(n + " elements is not a multiple of the " + type + " block size");
    }
    int blocks = n / type.blockSize;
    for (int b = 0; b < blocks; b++) {
      long at = srcOffset + (long) b * type.blockBytes;
      int out = dstOffset + b * type.blockSize;
      switch (type) {
        case F32 -> dst[out] = src.get(FLOAT, at);
        case F16 -> dst[out] = Float.float16ToFloat(src.get(SHORT, at));
        case BF16 -> dst[out] = bf16ToFloat(src.get(SHORT, at));
        case Q8_0 -> dequantizeQ8_0(src, at, dst, out);
        case Q4_0 -> dequantizeQ4_0(src, at, dst, out);
        case Q4_K -> dequantizeQ4_K(src, at, dst, out);
        case Q6_K -> dequantizeQ6_K(src, at, dst, out);
      }
    }
  }

  /** Row {@code row} of a tensor (the product of all but its last dimension counts rows). */
  public static float[] dequantizeRow(Tensor tensor, long row) {
    long cols = tensor.cols();
    if (row < 0 || row >= tensor.rows()) {
      throw new IndexOutOfBoundsException("row " + row + " of " + tensor);
    }
    if (cols > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(tensor + ": rows longer than a Java array");
    }
    float[] out = new float[(int) cols];
    dequantize(tensor.type(), tensor.data(), row * tensor.type().bytesFor(cols), out, 0, out.length);
    return out;
  }

  /** The whole tensor, rows one after another. */
  public static float[] dequantize(Tensor tensor) {
    long count = tensor.elementCount();
    if (count > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(tensor + ": too large for one Java array");
    }
    float[] out = new float[(int) count];
    dequantize(tensor.type(), tensor.data(), 0, out, 0, out.length);
    return out;
  }

  /**
   * Quantizes {@code src[srcOffset..srcOffset+n)} ({@code n} a multiple of the block size) into {@code
   * type.bytesFor(n)} bytes at {@code dstOffset} of {@code dst}.
   */
  public static void quantize(GgmlType type, float[] src, int srcOffset, int n, MemorySegment dst,
      long dstOffset) {
    if (n % type.blockSize != 0) {
      throw new IllegalArgumentException(n + " elements is not a multiple of the " + type + " block size");
    }
    int blocks = n / type.blockSize;
    for (int b = 0; b < blocks; b++) {
      long at = dstOffset + (long) b * type.blockBytes;
      int in = srcOffset + b * type.blockSize;
      switch (type) {
        case F32 -> dst.set(FLOAT, at, src[in]);
        case F16 -> dst.set(SHORT, at, Float.floatToFloat16(src[in]));
        case BF16 -> dst.set(SHORT, at, floatToBf16(src[in]));
        case Q8_0 -> quantizeQ8_0(src, in, dst, at);
        case Q4_0 -> quantizeQ4_0(src, in, dst, at);
        case Q4_K -> quantizeQ4_K(src, in, dst, at);
        case Q6_K -> quantizeQ6_K(src, in, dst, at);
      }
    }
  }

  /** Quantizes a whole row into a new byte array. */
  public static byte[] quantize(GgmlType type, float[] src) {
    byte[] out = new byte[Math.toIntExact(type.bytesFor(src.length))];
    quantize(type, src, 0, src.length, MemorySegment.ofArray(out), 0);
    return out;
  }

  /** bfloat16 is the top half of a float32. */
  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** Rounds to nearest even, as PyTorch and ggml do; NaNs stay NaN (quiet). */
  public static short floatToBf16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) {
      return (short) ((bits >>> 16) | 0x40);
    }
    return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
  }

  // ---- Q8_0: f16 d, 32 × int8 --------------------------------------------------------------------

  private static void dequantizeQ8_0(MemorySegment src, long at, float[] dst, int out) {
    float d = Float.float16ToFloat(src.get(SHORT, at));
    for (int j = 0; j < 32; j++) {
      dst[out + j] = src.get(JAVA_BYTE, at + 2 + j) * d;
    }
  }

  private static void quantizeQ8_0(float[] x, int in, MemorySegment dst, long at) {
    float amax = 0;
    for (int j = 0; j < 32; j++) {
      amax = Math.max(amax, Math.abs(x[in + j]));
    }
    float d = amax / 127;
    float id = d != 0 ? 1.0f / d : 0.0f;
    dst.set(SHORT, at, Float.floatToFloat16(d));
    for (int j = 0; j < 32; j++) {
      dst.set(JAVA_BYTE, at + 2 + j, (byte) roundHalfAwayFromZero(x[in + j] * id));
    }
  }

  /** C's {@code roundf}, which ggml's Q8_0 quantizer uses (Java's Math.round rounds half up). */
  private static int roundHalfAwayFromZero(float v) {
    float t = (float) (v < 0 ? Math.ceil(v) : Math.floor(v));
    if (Math.abs(v - t) >= 0.5f) {
      t += Math.signum(v);
    }
    return (int) t;
  }

  // ---- Q4_0: f16 d, 16 bytes of nibbles ----------------------------------------------------------

  private static void dequantizeQ4_0(MemorySegment src, long at, float[] dst, int out) {
    float d = Float.float16ToFloat(src.get(SHORT, at));
    for (int j = 0; j < 16; j++) {
      int q = src.get(JAVA_BYTE, at + 2 + j) & 0xFF;
      dst[out + j] = ((q & 0xF) - 8) * d;
      dst[out + j + 16] = ((q >>> 4) - 8) * d;
    }
  }

  private static void quantizeQ4_0(float[] x, int in, MemorySegment dst, long at) {
    // The value of largest magnitude keeps its sign and maps to -8, so that the asymmetric range
    // [-8, 7] is used fully on that side.
    float amax = 0;
    float max = 0;
    for (int j = 0; j < 32; j++) {
      float v = x[in + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    float d = max / -8;
    float id = d != 0 ? 1.0f / d : 0.0f;
    dst.set(SHORT, at, Float.floatToFloat16(d));
    for (int j = 0; j < 16; j++) {
      int lo = Math.min(15, (int) (x[in + j] * id + 8.5f));
      int hi = Math.min(15, (int) (x[in + j + 16] * id + 8.5f));
      dst.set(JAVA_BYTE, at + 2 + j, (byte) (lo | (hi << 4)));
    }
  }

  // ---- Q4_K ---------------------------------------------------------------------------------------

  private static void dequantizeQ4_K(MemorySegment src, long at, float[] dst, int out) {
    float d = Float.float16ToFloat(src.get(SHORT, at));
    float dmin = Float.float16ToFloat(src.get(SHORT, at + 2));
    long scales = at + 4;
    long qs = at + 16;
    for (int chunk = 0; chunk < 4; chunk++) {
      int s0 = 2 * chunk;
      int s1 = 2 * chunk + 1;
      float d1 = d * q4kScale(src, scales, s0);
      float m1 = dmin * q4kMin(src, scales, s0);
      float d2 = d * q4kScale(src, scales, s1);
      float m2 = dmin * q4kMin(src, scales, s1);
      for (int l = 0; l < 32; l++) {
        int q = src.get(JAVA_BYTE, qs + 32 * chunk + l) & 0xFF;
        dst[out + 64 * chunk + l] = d1 * (q & 0xF) - m1;
        dst[out + 64 * chunk + 32 + l] = d2 * (q >>> 4) - m2;
      }
    }
  }

  private static int q4kScale(MemorySegment src, long scales, int j) {
    if (j < 4) {
      return src.get(JAVA_BYTE, scales + j) & 63;
    }
    return (src.get(JAVA_BYTE, scales + j + 4) & 0xF) | (((src.get(JAVA_BYTE, scales + j - 4) & 0xFF) >>> 6) << 4);
  }

  private static int q4kMin(MemorySegment src, long scales, int j) {
    if (j < 4) {
      return src.get(JAVA_BYTE, scales + j + 4) & 63;
    }
    return ((src.get(JAVA_BYTE, scales + j + 4) & 0xFF) >>> 4) | (((src.get(JAVA_BYTE, scales + j) & 0xFF) >>> 6) << 4);
  }

  private static void quantizeQ4_K(float[] x, int in, MemorySegment dst, long at) {
    // Each sub-block of 32 gets x ≈ scale·q − min with q in [0, 15] and min ≥ 0 (sub-blocks that are
    // all positive use min 0, as the format cannot add). The 8 scales and 8 mins are then quantized
    // to 6 bits against the super-block's d and dmin, rounding up so that the range still covers
    // the sub-block; the nibbles are computed against the scales as they will be decoded.
    float[] scale = new float[8];
    float[] min = new float[8];
    float maxScale = 0;
    float maxMin = 0;
    for (int s = 0; s < 8; s++) {
      float lo = 0;
      float hi = -Float.MAX_VALUE;
      for (int l = 0; l < 32; l++) {
        lo = Math.min(lo, x[in + 32 * s + l]);
        hi = Math.max(hi, x[in + 32 * s + l]);
      }
      scale[s] = Math.max(0, hi - lo) / 15;
      min[s] = -lo;
      maxScale = Math.max(maxScale, scale[s]);
      maxMin = Math.max(maxMin, min[s]);
    }
    short dBits = Float.floatToFloat16(maxScale / 63);
    short dminBits = Float.floatToFloat16(maxMin / 63);
    float d = Float.float16ToFloat(dBits);
    float dmin = Float.float16ToFloat(dminBits);
    int[] sc = new int[8];
    int[] m = new int[8];
    for (int s = 0; s < 8; s++) {
      sc[s] = d > 0 ? Math.min(63, (int) Math.ceil(scale[s] / d)) : 0;
      m[s] = dmin > 0 ? Math.min(63, (int) Math.ceil(min[s] / dmin)) : 0;
    }
    dst.set(SHORT, at, dBits);
    dst.set(SHORT, at + 2, dminBits);
    for (int j = 0; j < 4; j++) {
      dst.set(JAVA_BYTE, at + 4 + j, (byte) ((sc[j] & 63) | ((sc[j + 4] >>> 4) << 6)));
      dst.set(JAVA_BYTE, at + 8 + j, (byte) ((m[j] & 63) | ((m[j + 4] >>> 4) << 6)));
      dst.set(JAVA_BYTE, at + 12 + j, (byte) ((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4)));
    }
    int[] q = new int[QK_K];
    for (int s = 0; s < 8; s++) {
      float dl = d * sc[s];
      float ml = dmin * m[s];
      for (int l = 0; l < 32; l++) {
        int i = 32 * s + l;
        q[i] = dl > 0 ? Math.clamp((int) Math.rint((x[in + i] + ml) / dl), 0, 15) : 0;
      }
    }
    for (int chunk = 0; chunk < 4; chunk++) {
      for (int l = 0; l < 32; l++) {
        dst.set(JAVA_BYTE, at + 16 + 32 * chunk + l, (byte) (q[64 * chunk + l] | (q[64 * chunk + 32 + l] << 4)));
      }
    }
  }

  // ---- Q6_K ---------------------------------------------------------------------------------------

  private static void dequantizeQ6_K(MemorySegment src, long at, float[] dst, int out) {
    float d = Float.float16ToFloat(src.get(SHORT, at + 208));
    for (int half = 0; half < 2; half++) {
      long ql = at + 64 * half;
      long qh = at + 128 + 32 * half;
      long sc = at + 192 + 8 * half;
      int base = out + 128 * half;
      for (int l = 0; l < 32; l++) {
        int is = l / 16;
        int low0 = src.get(JAVA_BYTE, ql + l) & 0xFF;
        int low32 = src.get(JAVA_BYTE, ql + l + 32) & 0xFF;
        int high = src.get(JAVA_BYTE, qh + l) & 0xFF;
        int q1 = ((low0 & 0xF) | ((high & 3) << 4)) - 32;
        int q2 = ((low32 & 0xF) | (((high >>> 2) & 3) << 4)) - 32;
        int q3 = ((low0 >>> 4) | (((high >>> 4) & 3) << 4)) - 32;
        int q4 = ((low32 >>> 4) | (((high >>> 6) & 3) << 4)) - 32;
        dst[base + l] = d * src.get(JAVA_BYTE, sc + is) * q1;
        dst[base + l + 32] = d * src.get(JAVA_BYTE, sc + is + 2) * q2;
        dst[base + l + 64] = d * src.get(JAVA_BYTE, sc + is + 4) * q3;
        dst[base + l + 96] = d * src.get(JAVA_BYTE, sc + is + 6) * q4;
      }
    }
  }

  private static void quantizeQ6_K(float[] x, int in, MemorySegment dst, long at) {
    // Each sub-block of 16 maps its value of largest magnitude (sign kept) to q − 32 = −32, using the
    // full side of the asymmetric range [−32, 31]; the 16 sub-block scales are then quantized to
    // int8 against the super-block scale d in the same way (largest maps to −128).
    float[] scale = new float[16];
    float maxScale = 0;
    float maxAbsScale = 0;
    for (int s = 0; s < 16; s++) {
      float amax = 0;
      float max = 0;
      for (int l = 0; l < 16; l++) {
        float v = x[in + 16 * s + l];
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          max = v;
        }
      }
      scale[s] = max / -32;
      if (Math.abs(scale[s]) > maxAbsScale) {
        maxAbsScale = Math.abs(scale[s]);
        maxScale = scale[s];
      }
    }
    short dBits = Float.floatToFloat16(maxScale / -128);
    float d = Float.float16ToFloat(dBits);
    int[] q = new int[QK_K];
    for (int s = 0; s < 16; s++) {
      int sc = d != 0 ? Math.clamp((int) Math.rint(scale[s] / d), -128, 127) : 0;
      dst.set(JAVA_BYTE, at + 192 + s, (byte) sc);
      float dl = d * sc;
      for (int l = 0; l < 16; l++) {
        int i = 16 * s + l;
        q[i] = dl != 0 ? Math.clamp((int) Math.rint(x[in + i] / dl), -32, 31) + 32 : 32;
      }
    }
    for (int half = 0; half < 2; half++) {
      for (int l = 0; l < 32; l++) {
        int e = 128 * half + l;
        dst.set(JAVA_BYTE, at + 64 * half + l, (byte) ((q[e] & 0xF) | ((q[e + 64] & 0xF) << 4)));
        dst.set(JAVA_BYTE, at + 64 * half + l + 32, (byte) ((q[e + 32] & 0xF) | ((q[e + 96] & 0xF) << 4)));
        dst.set(JAVA_BYTE, at + 128 + 32 * half + l, (byte) ((q[e] >>> 4) | ((q[e + 32] >>> 4) << 2)
            | ((q[e + 64] >>> 4) << 4) | ((q[e + 96] >>> 4) << 6)));
      }
    }
    dst.set(SHORT, at + 208, dBits);
  }
}
