package dev.selma.engine.backend.cpu;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionPlan;
import dev.selma.engine.attention.AttentionPlanner;
import dev.selma.engine.attention.AttentionStats;
import dev.selma.engine.attention.Rope;
import dev.selma.engine.backend.Activations;
import dev.selma.engine.backend.Backend;
import dev.selma.engine.backend.Weight;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.Tensor;
import java.util.Arrays;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The pure-Java backend: weights are read in place from mapped files and decoded row by row,
 * activations and the KV cache are fp32 arrays, loops are vectorised with the Vector API and spread
 * over a fork-join pool of {@code threads} threads. It is also the reference the GPU backend is
 * tested against.
 */
public final class CpuBackend implements Backend {
  /** Weight rows decoded together so that each activation load feeds four dot products. */
  private static final int ROW_PANEL = 4;

  private final int threads, kvPageTokens;
  private final KvPrecision kvPrecision;
  private final ForkJoinPool pool;
  private final CpuAttention attention = new CpuAttention(this);

  /** A backend on {@code threads} threads (at least 1), KV pages of 256 tokens. */
  public CpuBackend(int threads) {
    this(threads, CacheOptions.DEFAULT_PAGE_TOKENS);
  }

  /**
   * A backend on {@code threads} threads (at least 1) whose KV caches hold pages of {@code
   * kvPageTokens} tokens (a power of two, at least 16): the unit the prefix cache shares.
   */
  public CpuBackend(int threads, int kvPageTokens) {
    this(threads, kvPageTokens, KvPrecision.AUTO);
  }

  /**
   * As {@link #CpuBackend(int, int)}, with KV rows rounded to fp8 as they are stored under {@link
   * KvPrecision#FP8} (the GPU's fp8 pages hold the same values; here they stay fp32 arrays).
   */
  public CpuBackend(int threads, int kvPageTokens, KvPrecision kvPrecision) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    if (kvPageTokens < CpuKvCache.GRANULE || Integer.bitCount(kvPageTokens) != 1) {
      throw new IllegalArgumentException("KV page must be a power of two >= " + CpuKvCache.GRANULE + " tokens, got "
          + kvPageTokens);
    }
    this.threads = threads;
    this.kvPageTokens = kvPageTokens;
    this.kvPrecision = java.util.Objects.requireNonNull(kvPrecision, "kvPrecision");
    this.pool = new ForkJoinPool(threads);
  }

  /** A backend on every available processor. */
  public CpuBackend() {
    this(Runtime.getRuntime().availableProcessors());
  }

  @Override
  public String name() {
    return "cpu (" + threads + (threads == 1 ? " thread, " : " threads, ") + VectorMath.F.length() * 32
        + "-bit vectors" + (kvPrecision == KvPrecision.FP8 ? ", KV rounded to fp8" : "") + ")";
  }

  public int threads() {
    return threads;
  }

  @Override
  public Weight load(Tensor tensor) {
    return CpuWeight.of(tensor);
  }

  @Override
  public Activations allocate(int rows, int cols) {
    return new CpuActivations(rows, cols);
  }

  /** Heap arrays: the garbage collector takes them back. */
  @Override
  public void free(Activations matrix) {}

  @Override
  public KvCache newKvCache(ModelConfig config, int maxTokens) {
    return new CpuKvCache(config, maxTokens, kvPageTokens, kvPrecision);
  }

  @Override
  public void embed(Activations out, Weight table, int[] tokens) {
    CpuActivations o = (CpuActivations) out;
    CpuWeight w = (CpuWeight) table;
    check(o.rows() >= tokens.length && o.cols() == w.cols(), "embed shapes");
    for (int t = 0; t < tokens.length; t++) {
      if (tokens[t] < 0 || tokens[t] >= w.rows()) {
        throw new IllegalArgumentException("token id " + tokens[t] + " outside the vocabulary [0, " + w.rows() + ")");
      }
      RowDecoder.decode(w, tokens[t], o.data(), o.at(t, 0));
    }
  }

  @Override
  public void rmsNorm(Activations out, Activations x, Weight weight, float eps) {
    CpuActivations o = (CpuActivations) out, in = (CpuActivations) x;
    CpuWeight w = (CpuWeight) weight;
    int n = in.cols();
    check(w.rows() * w.cols() == n && o.cols() == n && o.rows() >= in.rows(), "rmsNorm shapes");
    float[] gamma = new float[n];
    RowDecoder.decode(w, 0, gamma, 0);
    parallelFor(in.rows(), t -> {
      float ss = VectorMath.sumOfSquares(in.data(), in.at(t, 0), n);
      float inv = (float) (1 / Math.sqrt(ss / n + eps));
      float[] od = o.data(), id = in.data();
      int oo = o.at(t, 0), io = in.at(t, 0);
      for (int i = 0; i < n; i++) {
        od[oo + i] = gamma[i] * (id[io + i] * inv);
      }
    });
  }

  @Override
  public void matmul(Activations out, Activations x, Weight weight) {
    CpuActivations o = (CpuActivations) out, in = (CpuActivations) x;
    CpuWeight w = (CpuWeight) weight;
    int rows = w.rows(), cols = w.cols(), tokens = in.rows();
    check(in.cols() == cols && o.cols() == rows && o.rows() >= tokens,
        "matmul " + w.name() + ": weight " + rows + "x" + cols + ", input " + tokens + "x" + in.cols()
            + ", output " + o.rows() + "x" + o.cols());
    int panels = (rows + ROW_PANEL - 1) / ROW_PANEL;
    // Enough tasks to balance threads, few enough that each decodes a run of rows.
    int tasks = Math.min(panels, threads * 8);
    parallelFor(tasks, task -> {
      int p0 = (int) ((long) panels * task / tasks), p1 = (int) ((long) panels * (task + 1) / tasks);
      float[] panel = new float[ROW_PANEL * cols];
      float[] od = o.data(), id = in.data();
      for (int p = p0; p < p1; p++) {
        int r0 = p * ROW_PANEL, n = Math.min(ROW_PANEL, rows - r0);
        for (int r = 0; r < n; r++) {
          RowDecoder.decode(w, r0 + r, panel, r * cols);
        }
        for (int t = 0; t < tokens; t++) {
          int io = in.at(t, 0), oo = o.at(t, r0);
          if (n == ROW_PANEL) {
            VectorMath.dot4(panel, 0, cols, id, io, od, oo, 1);
          } else {
            for (int r = 0; r < n; r++) {
              od[oo + r] = VectorMath.dot(panel, r * cols, id, io, cols);
            }
          }
        }
      }
    });
  }

  @Override
  public void addBias(Activations x, Weight bias) {
    CpuActivations a = (CpuActivations) x;
    CpuWeight w = (CpuWeight) bias;
    check(w.rows() * w.cols() == a.cols(), "bias " + w.name() + " shape");
    float[] b = new float[a.cols()];
    RowDecoder.decode(w, 0, b, 0);
    for (int t = 0; t < a.rows(); t++) {
      VectorMath.axpy(1f, b, 0, a.data(), a.at(t, 0), a.cols());
    }
  }

  @Override
  public void add(Activations x, Activations delta) {
    CpuActivations a = (CpuActivations) x, d = (CpuActivations) delta;
    check(a.cols() == d.cols() && d.rows() >= a.rows(), "add shapes");
    for (int t = 0; t < a.rows(); t++) {
      VectorMath.axpy(1f, d.data(), d.at(t, 0), a.data(), a.at(t, 0), a.cols());
    }
  }

  @Override
  public void swiglu(Activations gate, Activations up) {
    CpuActivations g = (CpuActivations) gate, u = (CpuActivations) up;
    check(g.cols() == u.cols() && u.rows() >= g.rows(), "swiglu shapes");
    parallelFor(g.rows(), t -> {
      float[] gd = g.data(), ud = u.data();
      int go = g.at(t, 0), uo = u.at(t, 0);
      for (int i = 0; i < g.cols(); i++) {
        float v = gd[go + i];
        gd[go + i] = v / (1 + (float) Math.exp(-v)) * ud[uo + i];
      }
    });
  }

  @Override
  public void storeKv(KvCache kvCache, int layer, Activations q, Activations k, Activations v) {
    CpuKvCache cache = (CpuKvCache) kvCache;
    CpuActivations qq = (CpuActivations) q, kk = (CpuActivations) k, vv = (CpuActivations) v;
    int start = cache.length(), hd = cache.headDim, group = qq.cols() / hd / cache.kvHeads;
    check(qq.rows() == kk.rows() && group * cache.kvHeads * hd == qq.cols(), "storeKv shapes");
    cache.reserve(start + kk.rows());
    float[] queryMean = new float[hd];
    for (int t = 0; t < kk.rows(); t++) {
      for (int h = 0; h < cache.kvHeads; h++) {
        queryMean(qq, t, h, group, hd, queryMean, 0);
        cache.store(layer, h, start + t, kk.data(), kk.at(t, h * hd), vv.data(), vv.at(t, h * hd), queryMean, true);
      }
    }
  }

  /** The mean of token t's query heads of KV head h, into {@code dst[at, at + hd)}. */
  private static void queryMean(CpuActivations q, int t, int h, int group, int hd, float[] dst, int at) {
    Arrays.fill(dst, at, at + hd, 0f);
    for (int g = 0; g < group; g++) {
      VectorMath.axpy(1f / group, q.data(), q.at(t, (h * group + g) * hd), dst, at, hd);
    }
  }

  @Override
  public void attention(Activations out, Activations q, KvCache kvCache, int layer, Rope rope,
      AttentionConfig config, AttentionStats stats) {
    CpuKvCache cache = (CpuKvCache) kvCache;
    CpuActivations o = (CpuActivations) out, qq = (CpuActivations) q;
    int start = cache.length(), chunk = qq.rows(), d = cache.headDim;
    check(o.rows() >= chunk && o.cols() == qq.cols(), "attention shapes");
    CpuKvCache.BlockMeans means = cache.means(layer, config.blockSize(), start + chunk);
    // A token that chooses with its own query (Selection.QUERY): its query heads' mean per KV head.
    float[] token = new float[chunk == 1 && config.tokenChooses(start) ? cache.kvHeads * d : 0];
    for (int h = 0; h < token.length / d; h++) {
      queryMean(qq, 0, h, qq.cols() / d / cache.kvHeads, d, token, h * d);
    }
    AttentionPlan plan = AttentionPlanner.plan(config, start, chunk, cache.kvHeads,
        (head, queryBlock, from, to, dst) -> {
          float[] queries = queryBlock == AttentionPlanner.TOKEN ? token : means.queries;
          int qo = queryBlock == AttentionPlanner.TOKEN ? head * d : means.at(queryBlock, head, d);
          for (int j = from; j < to; j++) {
            int ko = means.at(j, head, d);
            dst[j - from] = config.selection().bounds()
                ? VectorMath.bound(queries, qo, means.keyMin, means.keyMax, ko, d)
                : VectorMath.dot(queries, qo, means.keys, ko, d);
          }
        });
    stats.record(layer, plan);
    attention.run(o, qq, cache, layer, rope, plan);
  }

  @Override
  public void read(Activations x, int row, float[] dst) {
    CpuActivations a = (CpuActivations) x;
    System.arraycopy(a.data(), a.at(row, 0), dst, 0, a.cols());
  }

  @Override
  public void close() {
    pool.shutdown();
  }

  /** Runs {@code body(i)} for i in [0, n) on this backend's threads; inline when there is one. */
  void parallelFor(int n, IntConsumer body) {
    if (threads == 1 || n == 1) {
      for (int i = 0; i < n; i++) {
        body.accept(i);
      }
      return;
    }
    pool.submit(() -> IntStream.range(0, n).parallel().forEach(body)).join();
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new IllegalArgumentException("shape mismatch: " + what);
    }
  }
}
