package dev.selma.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.backend.Activations;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The CPU backend's row decoders and matmul against the model package's reference dequantizer. */
class CpuKernelsTest {

  private static Tensor randomTensor(GgmlType type, int rows, int cols, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] values = new float[rows * cols];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (r.nextGaussian() * 0.5);
    }
    byte[] bytes = Quants.quantize(type, values);
    MemorySegment s = Arena.ofAuto().allocate(bytes.length, 32);
    MemorySegment.copy(MemorySegment.ofArray(bytes), 0, s, 0, bytes.length);
    return new Tensor("w", type, new long[] {rows, cols}, s);
  }

  @ParameterizedTest
  @EnumSource(GgmlType.class)
  void rowDecodingIsBitExactWithTheReferenceDequantizer(GgmlType type) {
    Tensor t = randomTensor(type, 5, 512, type.ordinal());
    CpuWeight w = CpuWeight.of(t);
    for (int row = 0; row < 5; row++) {
      float[] got = new float[512];
      RowDecoder.decode(w, row, got, 0);
      assertArrayEquals(Quants.dequantizeRow(t, row), got, 0f, type + " row " + row);
    }
  }

  @ParameterizedTest
  @EnumSource(GgmlType.class)
  void matmulEqualsANaiveProductOfTheDequantizedWeights(GgmlType type) {
    int rows = 37, cols = 256, tokens = 5; // 37 rows: the last panel is partial
    Tensor t = randomTensor(type, rows, cols, 100 + type.ordinal());
    float[] w = Quants.dequantize(t);
    try (CpuBackend backend = new CpuBackend(2)) {
      CpuActivations x = (CpuActivations) backend.allocate(tokens, cols);
      SplittableRandom r = new SplittableRandom(1);
      for (int i = 0; i < x.data().length; i++) {
        x.data()[i] = (float) r.nextGaussian();
      }
      Activations out = backend.allocate(tokens, rows);
      backend.matmul(out, x, backend.load(t));
      float[] row = new float[rows];
      for (int tok = 0; tok < tokens; tok++) {
        backend.read(out, tok, row);
        for (int o = 0; o < rows; o++) {
          double expected = 0;
          for (int i = 0; i < cols; i++) {
            expected += (double) w[o * cols + i] * x.data()[tok * cols + i];
          }
          assertEquals(expected, row[o], 1e-4 * (1 + Math.abs(expected)), type + " token " + tok + " row " + o);
        }
      }
    }
  }

  @org.junit.jupiter.api.Test
  void theSoftmaxExponentialIsWithinTwoUlpOfMathExp() {
    int lanes = VectorMath.F.length();
    float[] x = new float[lanes], y = new float[lanes];
    for (int i = 0; i < 200_000; i++) {
      float v = -i * 0.0005f; // 0 down to -100, where e^x underflows
      java.util.Arrays.fill(x, v);
      VectorMath.expNonPositive(jdk.incubator.vector.FloatVector.fromArray(VectorMath.F, x, 0)).intoArray(y, 0);
      double expected = Math.exp(v);
      if (v > -87.3f) {
        assertEquals(expected, y[0], 2 * Math.ulp((float) expected), "exp(" + v + ")");
      } else {
        assertTrue(y[0] >= 0 && y[0] < 1e-37f, "exp(" + v + ") = " + y[0]);
      }
    }
  }

  @org.junit.jupiter.api.Test
  void theKeyBoundIsAtLeastEveryKeysScoreAndReachedByTheBestCorner() {
    SplittableRandom r = new SplittableRandom(5);
    int d = 40; // not a multiple of the vector width: the scalar tail counts too
    float[] q = new float[d], lo = new float[d], hi = new float[d];
    java.util.Arrays.fill(lo, Float.POSITIVE_INFINITY);
    java.util.Arrays.fill(hi, Float.NEGATIVE_INFINITY);
    float[][] keys = new float[16][d];
    for (int c = 0; c < d; c++) {
      q[c] = (float) r.nextGaussian();
      for (float[] k : keys) {
        k[c] = (float) r.nextGaussian();
        lo[c] = Math.min(lo[c], k[c]);
        hi[c] = Math.max(hi[c], k[c]);
      }
    }
    float bound = VectorMath.bound(q, 0, lo, hi, 0, d);
    for (float[] k : keys) {
      assertTrue(bound >= VectorMath.dot(q, 0, k, 0, d) - 1e-4f);
    }
    float[] corner = new float[d];
    for (int c = 0; c < d; c++) {
      corner[c] = q[c] >= 0 ? hi[c] : lo[c];
    }
    assertEquals(VectorMath.dot(q, 0, corner, 0, d), bound, 1e-4f);
  }
}
