package dev.selma.engine.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * fp8 e4m3 rounding against the format's definition (OCP 8-bit floating point, E4M3: bias 7, three
 * mantissa bits, subnormals below 2^-6, no infinities, largest finite 448) and the saturating,
 * ties-to-even conversion CUDA's {@code __nv_fp8_e4m3} performs.
 */
class Fp8Test {
  /** Every finite non-negative e4m3 number, decoded from its bits as the format defines them. */
  static List<Float> positives() {
    List<Float> out = new ArrayList<>();
    for (int code = 0; code < 0x7f; code++) { // 0x7f is NaN
      int exponent = code >> 3, mantissa = code & 7;
      out.add(exponent == 0 ? mantissa * 0x1p-9f : (1 + mantissa / 8f) * (float) Math.pow(2, exponent - 7));
    }
    return out;
  }

  @Test
  void everyE4m3NumberIsItsOwnRoundingAndMidpointsGoToTheEvenOne() {
    List<Float> numbers = positives();
    assertEquals(448f, numbers.getLast());
    for (int i = 0; i < numbers.size(); i++) {
      float x = numbers.get(i);
      assertEquals(x, Fp8.round(x));
      assertEquals(-x, Fp8.round(-x));
      if (i + 1 < numbers.size()) {
        float next = numbers.get(i + 1), mid = (x + next) / 2;
        float even = (i & 1) == 0 ? x : next; // codes alternate between even and odd mantissas
        assertEquals(even, Fp8.round(mid), "midpoint of " + x + " and " + next);
        assertEquals(x, Fp8.round(Math.nextDown(mid)));
        assertEquals(next, Fp8.round(Math.nextUp(mid)));
      }
    }
  }

  @Test
  void largeNumbersSaturateAndTinyOnesFlushToZeroOrTheSmallestSubnormal() {
    assertEquals(448f, Fp8.round(464f)); // past the last midpoint: saturated, not NaN
    assertEquals(-448f, Fp8.round(-1e30f));
    assertEquals(448f, Fp8.round(Float.POSITIVE_INFINITY));
    assertEquals(0f, Fp8.round(0x1p-10f)); // half the smallest subnormal: ties to zero
    assertEquals(0x1p-9f, Fp8.round(0x1.1p-10f));
    assertTrue(Float.isNaN(Fp8.round(Float.NaN)));
  }

  @Test
  void aRowKeepsItsLargestMagnitudeAndEveryElementWithinHalfAStep() {
    SplittableRandom random = new SplittableRandom(3);
    float[] row = new float[130];
    for (int i = 0; i < row.length; i++) {
      // Magnitudes over several binades, below the one largest.
      row[i] = (float) Math.clamp(random.nextGaussian() * Math.exp(random.nextGaussian()), -9, 9);
    }
    row[77] = -9.5f; // the largest magnitude
    float[] rounded = row.clone();
    Fp8.roundRow(rounded, 1, 128);
    assertEquals(row[0], rounded[0], "outside the row");
    assertEquals(row[129], rounded[129], "outside the row");
    float scale = 9.5f / Fp8.MAX;
    assertEquals(-9.5f, rounded[77], 1e-6f);
    for (int i = 1; i < 129; i++) {
      float scaled = rounded[i] / scale;
      assertEquals(Fp8.round(scaled), scaled, 1e-4f * Math.abs(scaled), "an e4m3 number times the scale");
      // Half a step: 2^-4 of the value in the normal range, 2^-10 of the scale below it.
      float bound = Math.max(Math.abs(row[i]) / 16, 0x1p-10f * scale) * 1.0001f;
      assertTrue(Math.abs(rounded[i] - row[i]) <= bound, i + ": " + row[i] + " -> " + rounded[i]);
    }
    float[] zeros = new float[8];
    Fp8.roundRow(zeros, 0, 8);
    assertEquals(0f, zeros[3]);
  }
}
