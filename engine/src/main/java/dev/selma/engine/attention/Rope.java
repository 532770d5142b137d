package dev.selma.engine.attention;

import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.ModelConfig.RopeStyle;
import dev.selma.engine.model.RopeScaling;

/**
 * Rotary position embedding: the frequencies of a model (its base, head width and scaling type) and
 * the rotation of a head vector to a position.
 *
 * <p>Frequencies follow Hugging Face {@code transformers}' {@code ROPE_INIT_FUNCTIONS} for every
 * scaling type, but angles are computed in double precision: at a million positions a float32 angle
 * {@code position·invFreq} is off by a tenth of a radian, which would scramble exactly the distant
 * tokens long-context attention is for.
 *
 * <p>Keys are cached before RoPE, so a position is applied when attention runs; that is what lets
 * Self-Extend, re-indexed positions and cyclic positions share one cache.
 */
public final class Rope {
  /** Positions are split as hi·SPLIT + lo so that two small tables cover any position exactly. */
  private static final int SPLIT = 1024;

  private final int headDim;
  private final RopeStyle style;
  private final double base;
  private final double[] invFreq;
  private final float attentionFactor;
  private final float[] loCos, loSin; // [SPLIT][half]
  private float[] hiCos = new float[0], hiSin = new float[0]; // [hiCount][half], grown on demand
  private volatile int hiCount; // written last by ensure(), read first by rotate()

  private Rope(int headDim, RopeStyle style, double base, double[] invFreq, double attentionFactor) {
    this.headDim = headDim;
    this.base = base;
    this.style = style;
    this.invFreq = invFreq;
    this.attentionFactor = (float) attentionFactor;
    int half = headDim / 2;
    loCos = new float[SPLIT * half];
    loSin = new float[SPLIT * half];
    for (int p = 0; p < SPLIT; p++) {
      for (int i = 0; i < half; i++) {
        double a = p * invFreq[i];
        loCos[p * half + i] = (float) Math.cos(a);
        loSin[p * half + i] = (float) Math.sin(a);
      }
    }
  }

  /**
   * The rotary embedding of a model for sequences of {@code seqLen} tokens ({@code seqLen} matters
   * only for dynamic NTK scaling, whose base grows with the length).
   *
   * @param freqFactors null, or divisors of each frequency (llama.cpp's {@code rope_freqs})
   */
  public static Rope of(ModelConfig config, float[] freqFactors, int seqLen) {
    return of(config.headDim(), config.ropeStyle(), config.ropeTheta(), config.ropeScaling(),
        config.maxPositionEmbeddings(), freqFactors, seqLen);
  }

  /** As {@link #of(ModelConfig, float[], int)}, with the parameters spelled out. */
  public static Rope of(int headDim, RopeStyle style, double base, RopeScaling scaling, int maxPositions,
      float[] freqFactors, int seqLen) {
    int half = headDim / 2;
    double[] inv = new double[half];
    double attentionFactor = 1;
    switch (scaling.type()) {
      case NONE -> defaultFrequencies(inv, base, headDim);
      case LINEAR -> {
        defaultFrequencies(inv, base, headDim);
        for (int i = 0; i < half; i++) {
          inv[i] /= scaling.factor();
        }
      }
      case DYNAMIC -> {
        // transformers: the base grows once the sequence exceeds max_position_embeddings.
        double len = Math.max(seqLen, maxPositions);
        double f = scaling.factor();
        double grown = base * Math.pow(f * len / maxPositions - (f - 1), headDim / (headDim - 2.0));
        defaultFrequencies(inv, grown, headDim);
      }
      case YARN -> attentionFactor = yarnFrequencies(inv, base, headDim, scaling);
      case LLAMA3 -> llama3Frequencies(inv, base, headDim, scaling);
    }
    if (freqFactors != null) {
      if (freqFactors.length != half) {
        throw new IllegalArgumentException("rope frequency factors have " + freqFactors.length
            + " entries, expected head_dim/2 = " + half);
      }
      for (int i = 0; i < half; i++) {
        inv[i] /= freqFactors[i];
      }
    }
    return new Rope(headDim, style, base, inv, attentionFactor);
  }

  private static void defaultFrequencies(double[] inv, double base, int headDim) {
    for (int i = 0; i < inv.length; i++) {
      inv[i] = 1.0 / Math.pow(base, (2.0 * i) / headDim);
    }
  }

  private static double yarnFrequencies(double[] inv, double base, int headDim, RopeScaling s) {
    double factor = s.factor();
    double betaFast = Double.isNaN(s.betaFast()) ? 32 : s.betaFast();
    double betaSlow = Double.isNaN(s.betaSlow()) ? 1 : s.betaSlow();
    int original = s.originalMaxPositionEmbeddings();
    double low = Math.max(Math.floor(yarnCorrectionDim(betaFast, headDim, base, original)), 0);
    double high = Math.min(Math.ceil(yarnCorrectionDim(betaSlow, headDim, base, original)), headDim - 1);
    if (low == high) {
      high += 0.001; // as transformers: avoids a division by zero in the ramp
    }
    for (int i = 0; i < inv.length; i++) {
      double posFreq = Math.pow(base, (2.0 * i) / headDim);
      double extrapolation = 1 / posFreq;
      double interpolation = 1 / (factor * posFreq);
      double ramp = Math.clamp((i - low) / (high - low), 0, 1);
      double extrapolationWeight = 1 - ramp;
      inv[i] = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
    }
    return Double.isNaN(s.attentionFactor()) ? (factor <= 1 ? 1 : 0.1 * Math.log(factor) + 1) : s.attentionFactor();
  }

  /** The dimension whose wavelength makes {@code rotations} turns over {@code maxPositions}. */
  private static double yarnCorrectionDim(double rotations, int headDim, double base, int maxPositions) {
    return headDim * Math.log(maxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
  }

  private static void llama3Frequencies(double[] inv, double base, int headDim, RopeScaling s) {
    defaultFrequencies(inv, base, headDim);
    double factor = s.factor();
    double lowFreqWavelen = s.originalMaxPositionEmbeddings() / s.lowFreqFactor();
    double highFreqWavelen = s.originalMaxPositionEmbeddings() / s.highFreqFactor();
    for (int i = 0; i < inv.length; i++) {
      double wavelen = 2 * Math.PI / inv[i];
      if (wavelen > lowFreqWavelen) {
        inv[i] = inv[i] / factor;
      } else if (wavelen >= highFreqWavelen) {
        double smooth = (s.originalMaxPositionEmbeddings() / wavelen - s.lowFreqFactor())
            / (s.highFreqFactor() - s.lowFreqFactor());
        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
      }
    }
  }

  public int headDim() {
    return headDim;
  }

  /** The base the frequencies were derived from (before dynamic scaling grows it). */
  public double base() {
    return base;
  }

  /** The inverse frequencies, {@code headDim/2} of them. */
  public double[] inverseFrequencies() {
    return invFreq.clone();
  }

  /** Scales both q and k (YaRN's attention temperature); 1 for other types. */
  public float attentionFactor() {
    return attentionFactor;
  }

  /**
   * Rotates the head vector {@code v[off, off+headDim)} to {@code position}. Thread-safe once the
   * tables cover the position; callers that rotate from several threads call {@link #ensure} first.
   */
  public void rotate(float[] v, int off, long position) {
    int half = headDim / 2;
    int lo = (int) (position % SPLIT);
    int hi = (int) (position / SPLIT);
    if (hi >= hiCount) {
      ensure(position);
    }
    int lb = lo * half, hb = hi * half;
    float f = attentionFactor;
    for (int i = 0; i < half; i++) {
      // cos(a+b) and sin(a+b) from the two tables.
      float c = loCos[lb + i] * hiCos[hb + i] - loSin[lb + i] * hiSin[hb + i];
      float s = loSin[lb + i] * hiCos[hb + i] + loCos[lb + i] * hiSin[hb + i];
      c *= f;
      s *= f;
      int a, b;
      if (style == RopeStyle.HALF) {
        a = off + i;
        b = off + i + half;
      } else {
        a = off + 2 * i;
        b = a + 1;
      }
      float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x1 * c + x0 * s;
    }
  }

  /** Makes the tables cover positions up to {@code maxPosition}. */
  public synchronized void ensure(long maxPosition) {
    int need = (int) (maxPosition / SPLIT) + 1;
    if (need <= hiCount) {
      return;
    }
    int half = headDim / 2;
    int n = Math.max(need, hiCount * 2);
    float[] c = java.util.Arrays.copyOf(hiCos, n * half);
    float[] s = java.util.Arrays.copyOf(hiSin, n * half);
    for (int h = hiCount; h < n; h++) {
      for (int i = 0; i < half; i++) {
        double a = (double) h * SPLIT * invFreq[i];
        c[h * half + i] = (float) Math.cos(a);
        s[h * half + i] = (float) Math.sin(a);
      }
    }
    hiSin = s; // publish sin before cos and count: readers check hiCount first
    hiCos = c;
    hiCount = n;
  }
}
