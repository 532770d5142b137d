package dev.selma.engine.kv;

/**
 * fp8 e4m3 rounding of KV rows as the GPU's fp8 pages store them ({@code kv_store.cu}): a row is
 * divided by its scale, its largest magnitude / {@link #MAX}, rounded to the nearest e4m3 number (ties
 * to even, saturating at ±448) and multiplied back. Same float operations in the same order, so that
 * the CPU's fp8 reference holds the very values the GPU reads.
 */
public final class Fp8 {
  /** e4m3's largest finite value. */
  public static final float MAX = 448f;
  /** e4m3's smallest normal exponent: below it numbers are subnormal, multiples of 2^-9. */
  private static final int MIN_EXPONENT = -6, MANTISSA_BITS = 3;

  private Fp8() {}

  /** The e4m3 number nearest {@code x} (ties to even), saturated to ±448; NaN stays NaN. */
  public static float round(float x) {
    float a = Math.abs(x);
    if (Float.isNaN(a)) {
      return x;
    }
    if (a >= MAX) {
      return Math.copySign(MAX, x);
    }
    int e = Math.max(Math.getExponent(a), MIN_EXPONENT);
    float ulp = Math.scalb(1f, e - MANTISSA_BITS);
    return Math.copySign((float) (Math.rint(a / ulp) * ulp), x);
  }

  /** Rounds {@code a[offset, offset + length)} in place as one fp8 row with its own scale. */
  public static void roundRow(float[] a, int offset, int length) {
    float amax = 0f;
    for (int i = offset; i < offset + length; i++) {
      amax = Math.max(amax, Math.abs(a[i]));
    }
    float inv = amax > 0f ? MAX / amax : 0f, scale = amax / MAX;
    for (int i = offset; i < offset + length; i++) {
      a[i] = round(a[i] * inv) * scale;
    }
  }
}
