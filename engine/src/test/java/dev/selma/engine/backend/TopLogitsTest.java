package dev.selma.engine.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

public class TopLogitsTest {

  /** Rows that exercise the order: Gaussian logits, many equal values, ±0, infinities. */
  public static float[][] rows(int n) {
    SplittableRandom r = new SplittableRandom(17);
    float[] gaussian = new float[n], levels = new float[n], signs = new float[n];
    for (int i = 0; i < n; i++) {
      gaussian[i] = (float) (r.nextGaussian() * 3);
      levels[i] = r.nextInt(5) - 2; // five values, each thousands of times
      signs[i] = switch (r.nextInt(6)) {
        case 0 -> 0f;
        case 1 -> -0f;
        case 2 -> Float.NEGATIVE_INFINITY;
        case 3 -> Float.POSITIVE_INFINITY;
        default -> (float) r.nextGaussian();
      };
    }
    return new float[][] {gaussian, levels, signs};
  }

  @Test
  void theLargestComeFirstAndEqualValuesByAscendingId() {
    for (float[] row : rows(5000)) {
      Integer[] order = new Integer[row.length];
      Arrays.setAll(order, i -> i);
      // Float.compare orders -0 below +0, as TopLogits does.
      Arrays.sort(order, Comparator.<Integer, Float>comparing(i -> row[i], Float::compare).reversed()
          .thenComparing(i -> i));
      for (int k : new int[] {1, 2, 40, 312, 1024, 5000}) {
        TopLogits top = TopLogits.of(row, k, 0);
        int[] expected = Arrays.stream(order, 0, k).mapToInt(Integer::intValue).toArray();
        assertArrayEquals(expected, top.ids(), "k " + k);
        for (int i = 0; i < k; i++) {
          assertEquals(row[expected[i]], top.values()[i]);
        }
        assertEquals(0, top.expSum());
      }
    }
  }

  @Test
  void theDenominatorIsTheWholeRowsAtTheTemperature() {
    float[] row = rows(3000)[0];
    float inv = 1 / 0.7f;
    TopLogits top = TopLogits.of(row, 10, inv);
    double max = Float.NEGATIVE_INFINITY, sum = 0;
    for (float v : row) {
      max = Math.max(max, v * inv);
    }
    for (float v : row) {
      sum += Math.exp(v * inv - max);
    }
    assertEquals(sum, top.expSum(), 1e-12 * sum);
  }

  @Test
  void kOutsideTheRowIsRejected() {
    assertThrows(IllegalArgumentException.class, () -> TopLogits.of(new float[4], 0, 0));
    assertThrows(IllegalArgumentException.class, () -> TopLogits.of(new float[4], 5, 0));
  }
}
