package dev.selma.engine.attention;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig.SelfExtend;
import dev.selma.engine.backend.Activations;
import dev.selma.engine.backend.Weight;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The backend's Self-Extend against a direct per-pair implementation of the paper's formula, on random
 * queries, keys and values: prefill in chunks, then decode one token at a time with the cache.
 */
class SelfExtendTest {
  private static final CpuBackend BACKEND = new CpuBackend(2);
  /** 4 query heads sharing 2 KV heads of width 16; one layer. */
  private static final ModelConfig CONFIG = RandomModel.config(11, 64, 1, 4, 2, false);
  private static final int N = 200, D = CONFIG.headDim();
  private static final float[][] Q = random(N, CONFIG.qDim(), 1), K = random(N, CONFIG.kvDim(), 2),
      V = random(N, CONFIG.kvDim(), 3);

  @AfterAll
  static void close() {
    BACKEND.close();
  }

  private static float[][] random(int rows, int cols, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[][] m = new float[rows][cols];
    for (float[] row : m) {
      for (int i = 0; i < cols; i++) {
        row[i] = (float) r.nextGaussian();
      }
    }
    return m;
  }

  /** The rows as a table the backend can embed from: row t of the result is matrix row t. */
  private static Weight table(float[][] m) {
    MemorySegment s = Arena.ofAuto().allocate(4L * m.length * m[0].length, 4);
    for (int t = 0; t < m.length; t++) {
      MemorySegment.copy(m[t], 0, s, ValueLayout.JAVA_FLOAT, 4L * t * m[0].length, m[0].length);
    }
    return BACKEND.load(new Tensor("table", GgmlType.F32, new long[] {m.length, m[0].length}, s));
  }

  /** Runs the backend over tokens [0, N) in the given chunk sizes (the rest one at a time). */
  private static float[][] backend(AttentionConfig config, int... chunks) {
    Weight q = table(Q), k = table(K), v = table(V);
    Rope rope = Rope.of(CONFIG, null, N);
    AttentionStats stats = new AttentionStats(1, config.blockSize());
    float[][] out = new float[N][CONFIG.qDim()];
    try (KvCache cache = BACKEND.newKvCache(CONFIG, N)) {
      int start = 0, c = 0;
      while (start < N) {
        int n = c < chunks.length ? chunks[c++] : 1;
        int[] ids = IntStream.range(start, start + n).toArray();
        Activations qa = BACKEND.allocate(n, CONFIG.qDim()), ka = BACKEND.allocate(n, CONFIG.kvDim()),
            va = BACKEND.allocate(n, CONFIG.kvDim()), o = BACKEND.allocate(n, CONFIG.qDim());
        BACKEND.embed(qa, q, ids);
        BACKEND.embed(ka, k, ids);
        BACKEND.embed(va, v, ids);
        BACKEND.storeKv(cache, 0, qa, ka, va);
        BACKEND.attention(o, qa, cache, 0, rope, config, stats);
        cache.advance(n);
        for (int t = 0; t < n; t++) {
          BACKEND.read(o, t, out[start + t]);
        }
        start += n;
      }
    }
    return out;
  }

  /** RoPE of one head vector (rotate_half pairing), in double precision, straight from the definition. */
  private static double[] rope(float[] x, int off, long position) {
    int half = D / 2;
    double[] y = new double[D];
    for (int i = 0; i < half; i++) {
      double angle = position * Math.pow(CONFIG.ropeTheta(), -2.0 * i / D);
      double x0 = x[off + i], x1 = x[off + i + half];
      y[i] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
      y[i + half] = x1 * Math.cos(angle) + x0 * Math.sin(angle);
    }
    return y;
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }

  /**
   * Self-Extend as the paper defines it, one query–key pair at a time: distance i − j < W uses
   * positions i and j, otherwise i/G + W − W/G and j/G (integer division); one softmax over all j ≤ i.
   */
  private static double[] naive(int i, int head, int groupSize, int window) {
    int kvHead = head / CONFIG.groupSize();
    double[] scores = new double[i + 1];
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j <= i; j++) {
      boolean neighbour = i - j < window;
      long qPos = neighbour ? i : i / groupSize + window - window / groupSize;
      long kPos = neighbour ? j : j / groupSize;
      scores[j] = dot(rope(Q[i], head * D, qPos), rope(K[j], kvHead * D, kPos)) / Math.sqrt(D);
      max = Math.max(max, scores[j]);
    }
    double sum = 0;
    for (int j = 0; j <= i; j++) {
      scores[j] = Math.exp(scores[j] - max);
      sum += scores[j];
    }
    double[] out = new double[D];
    for (int j = 0; j <= i; j++) {
      for (int x = 0; x < D; x++) {
        out[x] += scores[j] / sum * V[j][kvHead * D + x];
      }
    }
    return out;
  }

  private static void assertMatchesNaive(float[][] got, int groupSize, int window, String what) {
    for (int i = 0; i < N; i++) {
      for (int h = 0; h < CONFIG.numHeads(); h++) {
        double[] expected = naive(i, h, groupSize, window);
        double scale = 0, diff = 0;
        for (int x = 0; x < D; x++) {
          scale = Math.max(scale, Math.abs(expected[x]));
          diff = Math.max(diff, Math.abs(expected[x] - got[i][h * D + x]));
        }
        assertTrue(diff <= 1e-5 * scale, what + ": token " + i + " head " + h + " differs by " + diff / scale);
      }
    }
  }

  @Test
  void denseSelfExtendIsThePapersFormulaInPrefillAndDecode() {
    AttentionConfig config = AttentionConfig.dense().withPositions(new SelfExtend(4, 16));
    assertMatchesNaive(backend(config, 64, 64, 50), 4, 16, "G=4 W=16");
    AttentionConfig uneven = AttentionConfig.dense().withPositions(new SelfExtend(3, 10));
    assertMatchesNaive(backend(uneven, 100, 37), 3, 10, "G=3 W=10 (shift W - W/G = 7)");
  }

  @Test
  void selectAndMergeReadingEveryBlockIsThePapersFormula() {
    AttentionConfig config = AttentionConfig.selectAndMerge(16, 64, 2, 1, 1).withPositions(new SelfExtend(4, 16));
    assertMatchesNaive(backend(config, 64, 64, 50), 4, 16, "select-and-merge G=4 W=16");
  }

  @Test
  void groupOneIsDenseAttention() {
    float[][] g1 = backend(AttentionConfig.dense().withPositions(new SelfExtend(1, 16)), 64, 64, 50);
    assertMatchesNaive(g1, 1, 16, "G=1"); // with G = 1 both branches are the exact positions
    assertMatchesNaive(backend(AttentionConfig.dense(), 64, 64, 50), 1, 16, "dense");
  }
}
