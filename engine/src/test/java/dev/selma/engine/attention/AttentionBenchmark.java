package dev.selma.engine.attention;

import dev.selma.engine.backend.Activations;
import dev.selma.engine.backend.Weight;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.RopeScaling;
import dev.selma.engine.model.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * CPU attention time per token against context length, dense and select-and-merge, for one layer of
 * Llama-3-8B's attention shape (32 query heads, 8 KV heads of 128). Random queries, keys and values
 * fill the cache; at each length the benchmark times a decode step (one query) and, where affordable,
 * a 256-token prefill chunk (the fastest of several runs). Prints a table and writes {@code target/attention-benchmark.json}.
 *
 * <pre>./mvnw -q -pl engine test-compile exec:exec \
 *   -Dexec.args="--add-modules jdk.incubator.vector -Xmx8g -cp %classpath dev.selma.engine.attention.AttentionBenchmark [maxContext]"</pre>
 */
public final class AttentionBenchmark {
  private static final int CHUNK = 256, TABLE_ROWS = 2048;
  /** Dense prefill grows quadratically; beyond this it takes minutes on a few cores. */
  private static final int DENSE_PREFILL_MAX = 8192;
  private static final AttentionConfig DENSE = AttentionConfig.dense();
  private static final AttentionConfig SPARSE = AttentionConfig.selectAndMerge(64, 64, 4, 1, 4);

  public static void main(String[] args) throws IOException {
    int maxContext = args.length > 0 ? Integer.parseInt(args[0]) : 131072;
    ModelConfig c = new ModelConfig("llama", 8, 4096, 8, 1, 32, 8, 128, 1e-5, 500000, RopeScaling.NONE,
        maxContext, false, false, ModelConfig.RopeStyle.HALF);
    int threads = Runtime.getRuntime().availableProcessors();
    String cpu = cpuModel();
    System.out.printf(Locale.ROOT, "attention of one layer, 32 q / 8 kv heads x 128; %s, %d threads%n", cpu, threads);
    System.out.printf(Locale.ROOT, "select-and-merge: block %d, top-k %d, merge %d, sinks %d, window %d (<= %d keys)%n",
        SPARSE.blockSize(), SPARSE.topK(), SPARSE.merge(), SPARSE.sinkBlocks(), SPARSE.windowBlocks(),
        SPARSE.gatheredBlocks() * SPARSE.blockSize());
    System.out.printf(Locale.ROOT, "%8s | %12s %12s %8s | %14s %14s%n", "context", "dense ms/tok", "s&m ms/tok",
        "speedup", "dense prefill", "s&m prefill");
    StringBuilder json = new StringBuilder(String.format(Locale.ROOT,
        "{\"cpu\":\"%s\",\"threads\":%d,\"heads\":32,\"kv_heads\":8,\"head_dim\":128,\"layers\":1,"
            + "\"select_and_merge\":{\"block\":%d,\"top_k\":%d,\"merge\":%d,\"sinks\":%d,\"window\":%d},"
            + "\"prefill_chunk\":%d,\"results\":[",
        cpu, threads, SPARSE.blockSize(), SPARSE.topK(), SPARSE.merge(), SPARSE.sinkBlocks(), SPARSE.windowBlocks(),
        CHUNK));

    try (CpuBackend backend = new CpuBackend(threads); KvCache cache = backend.newKvCache(c, maxContext + CHUNK)) {
      Bench b = new Bench(backend, c, cache);
      b.fill(1024);
      for (int i = 0; i < 20; i++) { // warm-up: JIT-compile the kernels and the planner
        b.time(DENSE, 1);
        b.time(SPARSE, 1);
        b.time(SPARSE, 64);
      }
      String sep = "";
      for (int n = 1024; n <= maxContext; n *= 2) {
        b.fill(n);
        int reps = n <= 16384 ? 9 : 5;
        double dense = b.fastest(DENSE, 1, reps), sparse = b.fastest(SPARSE, 1, reps);
        double densePrefill = n <= DENSE_PREFILL_MAX ? b.fastest(DENSE, CHUNK, 3) / CHUNK : Double.NaN;
        double sparsePrefill = b.fastest(SPARSE, CHUNK, 3) / CHUNK;
        System.out.printf(Locale.ROOT, "%8d | %12.3f %12.3f %7.1fx | %14s %14.3f%n", n, dense, sparse, dense / sparse,
            Double.isNaN(densePrefill) ? "-" : String.format(Locale.ROOT, "%.3f", densePrefill), sparsePrefill);
        json.append(sep).append(String.format(Locale.ROOT,
            "{\"context\":%d,\"dense_decode_ms\":%.4f,\"select_merge_decode_ms\":%.4f,"
                + "\"dense_prefill_ms_per_token\":%s,\"select_merge_prefill_ms_per_token\":%.4f}",
            n, dense, sparse, Double.isNaN(densePrefill) ? "null" : String.format(Locale.ROOT, "%.4f", densePrefill),
            sparsePrefill));
        sep = ",";
      }
    }
    Path out = Path.of("target", "attention-benchmark.json");
    Files.createDirectories(out.getParent());
    Files.writeString(out, json.append("]}\n").toString());
    System.out.println("wrote " + out.toAbsolutePath());
  }

  /** A cache of random keys and values, and timed attention calls at its end. */
  private static final class Bench {
    final CpuBackend backend;
    final ModelConfig c;
    final KvCache cache;
    final Weight q, k, v;
    final Rope rope;
    final SplittableRandom random = new SplittableRandom(5);

    Bench(CpuBackend backend, ModelConfig c, KvCache cache) {
      this.backend = backend;
      this.c = c;
      this.cache = cache;
      q = table(backend, TABLE_ROWS, c.qDim(), 1);
      k = table(backend, TABLE_ROWS, c.kvDim(), 2);
      v = table(backend, TABLE_ROWS, c.kvDim(), 3);
      rope = Rope.of(c, null, c.maxPositionEmbeddings());
    }

    /** Random rows of q, k and v for {@code n} tokens, stored in the cache (no attention). */
    Activations[] rows(int n) {
      int[] ids = random.ints(n, 0, TABLE_ROWS).toArray();
      Activations qa = backend.allocate(n, c.qDim()), ka = backend.allocate(n, c.kvDim()),
          va = backend.allocate(n, c.kvDim());
      backend.embed(qa, q, ids);
      backend.embed(ka, k, ids);
      backend.embed(va, v, ids);
      backend.storeKv(cache, 0, qa, ka, va);
      return new Activations[] {qa, ka, va};
    }

    void fill(int length) {
      while (cache.length() < length) {
        int n = Math.min(1024, length - cache.length());
        rows(n);
        cache.advance(n);
      }
    }

    /** Milliseconds of attention for {@code n} queries at the cache's end; the cache is left as it was. */
    double time(AttentionConfig config, int n) {
      int length = cache.length();
      Activations qa = rows(n)[0], out = backend.allocate(n, c.qDim());
      AttentionStats stats = new AttentionStats(1, config.blockSize());
      long t0 = System.nanoTime();
      backend.attention(out, qa, cache, 0, rope, config, stats);
      long t1 = System.nanoTime();
      cache.advance(n);
      cache.truncate(length);
      return (t1 - t0) / 1e6;
    }

    /**
     * The fastest of {@code reps} runs: on a machine shared with other work, slower runs measure the
     * other work, and the fastest is the best estimate of this one.
     */
    double fastest(AttentionConfig config, int n, int reps) {
      double best = Double.POSITIVE_INFINITY;
      for (int i = 0; i < reps; i++) {
        best = Math.min(best, time(config, n));
      }
      return best;
    }
  }

  private static Weight table(CpuBackend backend, int rows, int cols, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    MemorySegment s = Arena.ofAuto().allocate(4L * rows * cols, 4);
    for (long i = 0; i < (long) rows * cols; i++) {
      s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextGaussian());
    }
    return backend.load(new Tensor("table", GgmlType.F32, new long[] {rows, cols}, s));
  }

  private static String cpuModel() {
    try {
      return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
          .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }
}
