package dev.selma.engine.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The few vectorised loops every CPU kernel is made of; fp32 throughout. Lanes are summed in a fixed
 * order ({@link #sum}) rather than with {@code reduceLanes}, whose order differs between the
 * interpreter and compiled code: results must not depend on whether the JIT has run yet, or a cached
 * prefix and a recomputed one could differ in the last bits.
 */
final class VectorMath {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  private VectorMath() {}

  private static final float LOG2E = 1.44269504088896341f;
  private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;

  /**
   * e^x for every lane, for x ≤ 0 (softmax weights after subtracting the maximum), to about 2 ulp.
   * Written with plain IEEE operations rather than {@code lanewise(EXP)}, whose intrinsic and
   * interpreted forms may differ in the last bit: the same scores must give the same weights whether
   * or not the JIT has run.
   */
  static FloatVector expNonPositive(FloatVector x) {
    x = x.max(-87.3f); // below, e^x underflows; 2^n stays a normal float
    // n = round(x·log2 e), computed as trunc(v − 0.5) since v ≤ 0; r = x − n·ln 2 in two parts.
    FloatVector v = x.mul(LOG2E).sub(0.5f);
    jdk.incubator.vector.IntVector n = (jdk.incubator.vector.IntVector) v.convert(VectorOperators.F2I, 0);
    FloatVector fn = (FloatVector) n.convert(VectorOperators.I2F, 0);
    FloatVector r = fn.fma(FloatVector.broadcast(F, -LN2_HI), x).add(fn.mul(-LN2_LO));
    FloatVector p = FloatVector.broadcast(F, 1.9875691500e-4f).fma(r, FloatVector.broadcast(F, 1.3981999507e-3f));
    p = p.fma(r, FloatVector.broadcast(F, 8.3334519073e-3f));
    p = p.fma(r, FloatVector.broadcast(F, 4.1665795894e-2f));
    p = p.fma(r, FloatVector.broadcast(F, 1.6666665459e-1f));
    p = p.fma(r, FloatVector.broadcast(F, 5.0000001201e-1f));
    p = p.mul(r.mul(r)).add(r).add(1f);
    FloatVector twoToN = n.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    return p.mul(twoToN);
  }

  /** lane 0 + lane 1 + ... in that order. */
  static float sum(FloatVector v) {
    float s = 0;
    for (int i = 0; i < F.length(); i++) {
      s += v.lane(i);
    }
    return s;
  }

  static float dot(float[] a, int ao, float[] b, int bo, int n) {
    FloatVector acc = FloatVector.zero(F);
    int i = 0;
    for (int bound = F.loopBound(n); i < bound; i += F.length()) {
      acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
    }
    float s = sum(acc);
    for (; i < n; i++) {
      s += a[ao + i] * b[bo + i];
    }
    return s;
  }

  /**
   * Four dot products of consecutive rows {@code w[wo + r·n, +n)} (r = 0..3) with {@code x[xo, +n)},
   * written to {@code out[oo + r·stride]}. Loading x once for four rows is what makes batched matmul
   * compute-bound rather than load-bound.
   */
  static void dot4(float[] w, int wo, int n, float[] x, int xo, float[] out, int oo, int stride) {
    FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (int bound = F.loopBound(n); i < bound; i += F.length()) {
      FloatVector xv = FloatVector.fromArray(F, x, xo + i);
      a0 = FloatVector.fromArray(F, w, wo + i).fma(xv, a0);
      a1 = FloatVector.fromArray(F, w, wo + n + i).fma(xv, a1);
      a2 = FloatVector.fromArray(F, w, wo + 2 * n + i).fma(xv, a2);
      a3 = FloatVector.fromArray(F, w, wo + 3 * n + i).fma(xv, a3);
    }
    float s0 = sum(a0), s1 = sum(a1), s2 = sum(a2), s3 = sum(a3);
    for (; i < n; i++) {
      float xi = x[xo + i];
      s0 += w[wo + i] * xi;
      s1 += w[wo + n + i] * xi;
      s2 += w[wo + 2 * n + i] * xi;
      s3 += w[wo + 3 * n + i] * xi;
    }
    out[oo] = s0;
    out[oo + stride] = s1;
    out[oo + 2 * stride] = s2;
    out[oo + 3 * stride] = s3;
  }

  /**
   * {@code Σ_i max(q_i·lo_i, q_i·hi_i)}: the largest {@code q · k} any vector k with {@code lo ≤ k ≤
   * hi} element-wise can reach.
   */
  static float bound(float[] q, int qo, float[] lo, float[] hi, int ko, int n) {
    FloatVector acc = FloatVector.zero(F);
    int i = 0;
    for (int end = F.loopBound(n); i < end; i += F.length()) {
      FloatVector qv = FloatVector.fromArray(F, q, qo + i);
      acc = acc.add(qv.mul(FloatVector.fromArray(F, lo, ko + i)).max(qv.mul(FloatVector.fromArray(F, hi, ko + i))));
    }
    float s = sum(acc);
    for (; i < n; i++) {
      s += Math.max(q[qo + i] * lo[ko + i], q[qo + i] * hi[ko + i]);
    }
    return s;
  }

  /** {@code y[yo, +n) += a · x[xo, +n)}. */
  static void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
    FloatVector av = FloatVector.broadcast(F, a);
    int i = 0;
    for (int bound = F.loopBound(n); i < bound; i += F.length()) {
      FloatVector.fromArray(F, x, xo + i).fma(av, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
    }
    for (; i < n; i++) {
      y[yo + i] += a * x[xo + i];
    }
  }

  static float sumOfSquares(float[] x, int xo, int n) {
    FloatVector acc = FloatVector.zero(F);
    int i = 0;
    for (int bound = F.loopBound(n); i < bound; i += F.length()) {
      FloatVector v = FloatVector.fromArray(F, x, xo + i);
      acc = v.fma(v, acc);
    }
    float s = sum(acc);
    for (; i < n; i++) {
      s += x[xo + i] * x[xo + i];
    }
    return s;
  }
}
