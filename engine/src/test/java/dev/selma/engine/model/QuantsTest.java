package dev.selma.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

class QuantsTest {
  private static final short F16_ONE = 0x3C00;
  private static final short F16_HALF = 0x3800;
  private static final short F16_QUARTER = 0x3400;
  private static final short F16_TWO = 0x4000;

  private static float[] decode(GgmlType type, byte[] bytes, int n) {
    float[] out = new float[n];
    Quants.dequantize(type, MemorySegment.ofArray(bytes), 0, out, 0, n);
    return out;
  }

  private static void putF16(byte[] b, int at, short v) {
    b[at] = (byte) v;
    b[at + 1] = (byte) (v >> 8);
  }

  @Test
  void q8_0BlockIsScaleTimesSignedBytes() {
    byte[] block = new byte[34];
    putF16(block, 0, F16_HALF);
    for (int j = 0; j < 32; j++) {
      block[2 + j] = (byte) (j * 8 - 128);
    }
    float[] x = decode(GgmlType.Q8_0, block, 32);
    for (int j = 0; j < 32; j++) {
      assertEquals((j * 8 - 128) * 0.5f, x[j]);
    }
  }

  @Test
  void q4_0BlockHasLowNibblesFirstThenHighNibbles() {
    byte[] block = new byte[18];
    putF16(block, 0, F16_TWO);
    for (int j = 0; j < 16; j++) {
      block[2 + j] = (byte) (j | ((15 - j) << 4));
    }
    float[] x = decode(GgmlType.Q4_0, block, 32);
    for (int j = 0; j < 16; j++) {
      assertEquals((j - 8) * 2f, x[j], "element " + j);
      assertEquals((15 - j - 8) * 2f, x[j + 16], "element " + (j + 16));
    }
  }

  /**
   * Scales sc = {1, 2, 3, 4, 33, 42, 63, 17}, mins m = {5, 0, 63, 7, 20, 48, 1, 36}, packed by hand:
   * bytes 0–3 hold sc[0..3] in their low 6 bits and the top 2 bits of sc[4..7] in their top bits;
   * bytes 4–7 the same for the mins; bytes 8–11 hold the low nibbles of sc[4..7] (low) and m[4..7]
   * (high).
   */
  @Test
  void q4_KBlockDecodesPackedSixBitScalesAndMins() {
    int[] sc = {1, 2, 3, 4, 33, 42, 63, 17};
    int[] m = {5, 0, 63, 7, 20, 48, 1, 36};
    byte[] block = new byte[144];
    putF16(block, 0, F16_ONE);
    putF16(block, 2, F16_HALF);
    int[] scaleBytes = {0x81, 0x82, 0xC3, 0x44, 0x45, 0xC0, 0x3F, 0x87, 0x41, 0x0A, 0x1F, 0x41};
    for (int i = 0; i < 12; i++) {
      block[4 + i] = (byte) scaleBytes[i];
    }
    for (int i = 0; i < 128; i++) {
      int lo = i % 16;
      block[16 + i] = (byte) (lo | ((15 - lo) << 4));
    }
    float[] x = decode(GgmlType.Q4_K, block, 256);
    for (int chunk = 0; chunk < 4; chunk++) {
      for (int l = 0; l < 32; l++) {
        int lo = l % 16;
        assertEquals(sc[2 * chunk] * lo - 0.5f * m[2 * chunk], x[64 * chunk + l], "element " + (64 * chunk + l));
        assertEquals(sc[2 * chunk + 1] * (15 - lo) - 0.5f * m[2 * chunk + 1], x[64 * chunk + 32 + l],
            "element " + (64 * chunk + 32 + l));
      }
    }
  }

  /** Element e of the block has 6-bit value q(e) = (7e + 3) mod 64 and scale index e / 16. */
  @Test
  void q6_KBlockDecodesSplitLowAndHighBits() {
    int[] sc = {1, -2, 3, -4, 5, 6, -7, 8, 9, 10, -11, 12, 13, -14, 15, -128};
    byte[] block = new byte[210];
    for (int e = 0; e < 256; e++) {
      int q = (7 * e + 3) % 64;
      int half = e / 128;
      int quarter = (e % 128) / 32;
      int l = e % 32;
      int qlIndex = 64 * half + l + (quarter % 2 == 1 ? 32 : 0);
      int nibbleShift = quarter >= 2 ? 4 : 0;
      block[qlIndex] |= (byte) ((q & 0xF) << nibbleShift);
      block[128 + 32 * half + l] |= (byte) ((q >> 4) << (2 * quarter));
    }
    for (int s = 0; s < 16; s++) {
      block[192 + s] = (byte) sc[s];
    }
    putF16(block, 208, F16_QUARTER);
    float[] x = decode(GgmlType.Q6_K, block, 256);
    for (int e = 0; e < 256; e++) {
      assertEquals(0.25f * sc[e / 16] * ((7 * e + 3) % 64 - 32), x[e], "element " + e);
    }
  }

  @Test
  void q8_0QuantizerRoundsHalfAwayFromZeroLikeC() {
    float[] x = new float[32];
    for (int j = 0; j < 32; j++) {
      x[j] = j - 16;
    }
    byte[] q = Quants.quantize(GgmlType.Q8_0, x);
    // d = 16/127, so x·(1/d) = (j − 16)·7.9375: j = 8 gives −63.5 and j = 24 gives 63.5.
    assertEquals(Float.floatToFloat16(16f / 127), (short) ((q[0] & 0xFF) | (q[1] << 8)));
    assertEquals(-127, q[2]);
    assertEquals(-64, q[2 + 8]);
    assertEquals(64, q[2 + 24]);
    assertEquals(0, q[2 + 16]);
  }

  @Test
  void q4_0QuantizerMapsLargestMagnitudeToMinusEight() {
    float[] x = new float[32];
    for (int j = 0; j < 32; j++) {
      x[j] = j - 16;
    }
    byte[] q = Quants.quantize(GgmlType.Q4_0, x);
    // max = −16 (first element), d = −16/−8 = 2, q = min(15, (int) (x/2 + 8.5)).
    assertEquals(F16_TWO, (short) ((q[0] & 0xFF) | (q[1] << 8)));
    assertEquals(0, q[2] & 0xF);
    assertEquals(1, q[2 + 1] & 0xF);
    assertEquals(15, (q[2 + 15] >> 4) & 0xF, "element 31 = 15 → 16 is clamped to 15");
    float[] back = decode(GgmlType.Q4_0, q, 32);
    assertEquals(-16f, back[0]);
    assertEquals(14f, back[31]);
  }

  @Test
  void allZeroBlocksQuantizeToZero() {
    for (GgmlType type : GgmlType.values()) {
      float[] x = new float[256];
      assertArrayEquals(x, decode(type, Quants.quantize(type, x), 256), 0f, type.name());
    }
  }

  @Test
  void bf16RoundsToNearestEvenAndKeepsNaN() {
    assertEquals((short) 0x3F80, Quants.floatToBf16(1f));
    assertEquals((short) 0x3F80, Quants.floatToBf16(1f + 0x1p-8f), "tie goes to the even mantissa");
    assertEquals((short) 0x3F82, Quants.floatToBf16(1f + 3 * 0x1p-8f), "tie goes to the even mantissa");
    assertEquals((short) 0x3F81, Quants.floatToBf16(1f + 0x1p-8f + 0x1p-20f));
    assertTrue(Float.isNaN(Quants.bf16ToFloat(Quants.floatToBf16(Float.NaN))));
    assertEquals(Float.NEGATIVE_INFINITY, Quants.bf16ToFloat(Quants.floatToBf16(Float.NEGATIVE_INFINITY)));
    assertEquals(-2.5f, Quants.bf16ToFloat(Quants.floatToBf16(-2.5f)));
  }

  /**
   * Quantize-then-dequantize error on Gaussian data, per block, relative to the block's largest
   * magnitude: half a step of the type's grid, plus the rounding of the stored scales.
   */
  @Test
  void roundTripErrorIsWithinHalfAQuantizationStep() {
    Random random = new Random(42);
    for (GgmlType type : GgmlType.values()) {
      for (int trial = 0; trial < 50; trial++) {
        float[] x = new float[512];
        float spread = (float) Math.pow(10, random.nextInt(7) - 3);
        for (int i = 0; i < x.length; i++) {
          x[i] = (float) random.nextGaussian() * spread + (trial % 5 == 0 ? spread * 2 : 0);
        }
        float[] y = decode(type, Quants.quantize(type, x), x.length);
        for (int b = 0; b < x.length / type.blockSize; b++) {
          float amax = 0;
          for (int i = b * type.blockSize; i < (b + 1) * type.blockSize; i++) {
            amax = Math.max(amax, Math.abs(x[i]));
          }
          for (int i = b * type.blockSize; i < (b + 1) * type.blockSize; i++) {
            float bound = tolerance(type, amax);
            assertTrue(Math.abs(x[i] - y[i]) <= bound,
                type + " element " + i + ": " + x[i] + " came back as " + y[i] + " (bound " + bound + ")");
          }
        }
      }
    }
  }

  /**
   * Largest error a round trip may make on a block whose largest magnitude is {@code amax}. Scales
   * are stored as f16: relative rounding 2^-11 while normal, absolute 2^-25 once subnormal (tiny
   * blocks), multiplied by the largest code they scale.
   */
  static float tolerance(GgmlType type, float amax) {
    return switch (type) {
      case F32 -> 0;
      case F16 -> amax * 0x1p-11f + 0x1p-25f;
      case BF16 -> amax * 0x1p-8f;
      // Half a step of the integer grid plus the scale's rounding.
      case Q8_0 -> amax / 127 * 0.5f + amax * 0x1p-11f + 127 * 0x1p-25f;
      // ggml maps the largest magnitude to −8; the opposite extreme lands on +8, clamped to 7: a full step.
      case Q4_0 -> amax / 8 + amax * 0x1p-11f + 8 * 0x1p-25f;
      // Range 2·amax over 15 steps per sub-block; 6-bit scales rounded up add at most one step of d.
      case Q4_K -> 2 * amax / 15 * 0.5f + 2 * amax / 15 / 63 * 8 + 2 * 63 * 15 * 0x1p-25f;
      // As Q4_0: the largest magnitude maps to −32, its opposite may be clamped to 31 (a full step);
      // int8 sub-block scales add one part in 128 of the largest scale.
      case Q6_K -> amax / 32 + amax / 32 / 128 * 32 + 128 * 32 * 0x1p-25f;
    };
  }
}
