package dev.selma.engine.kv;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.Generator;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.RopeScaling;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Time to first token of a 64-token question after a cached prefix, against a cold prefill of the
 * same prompt, on the CPU with a random model of the demo model's shape (d 256, 4 layers, 8 heads /
 * 4 KV heads, FFN 768, vocab 32000), dense attention, pages of 256 tokens. The prefix is found in
 * each tier in turn: the fast tier (Java heap), the host tier (off-heap) and the disk tier (files;
 * just written, so likely still in the OS page cache). Prints a table and writes {@code
 * target/prefix-cache-benchmark.json}.
 *
 * <pre>./mvnw -q -pl engine test-compile exec:exec -DskipTests \
 *   -Dexec.args="--add-modules jdk.incubator.vector -Xmx12g -cp %classpath dev.selma.engine.kv.PrefixCacheBenchmark [context]"</pre>
 */
public final class PrefixCacheBenchmark {
  private static final int QUESTION = 64, PAGE = 256;

  public static void main(String[] args) throws IOException {
    int context = args.length > 0 ? Integer.parseInt(args[0]) : 32768;
    ModelConfig c = new ModelConfig("llama", 32000, 256, 768, 4, 8, 4, 32, 1e-5, 500000, RopeScaling.NONE,
        2 * context, false, false, ModelConfig.RopeStyle.HALF);
    LlamaWeights weights = RandomModel.weights(c, 1);
    String modelId = ModelFingerprint.of(c, weights);
    int threads = Runtime.getRuntime().availableProcessors();
    AttentionConfig attention = AttentionConfig.dense();
    Path folder = Files.createTempDirectory("selma-kv-bench");
    try (CpuBackend backend = new CpuBackend(threads, PAGE)) {
      Llama model = new Llama(c, weights, backend);
      int[] prefix = new SplittableRandom(1).ints(context, 0, c.vocabSize()).toArray();
      int[] cold = concat(prefix, question(2)), warm = concat(prefix, question(3));
      long big = Long.MAX_VALUE / 4;

      try (PrefixCache scratch = new PrefixCache(new CacheOptions(true, PAGE, big, 0, 0, null), modelId)) {
        ttft(model, scratch, concat(Arrays.copyOf(prefix, 2048), question(4)), attention); // compile the kernels
        ttft(model, scratch, concat(Arrays.copyOf(prefix, 2048), question(5)), attention);
      }
      List<String[]> rows = new ArrayList<>();
      try (PrefixCache fast = new PrefixCache(new CacheOptions(true, PAGE, big, 0, 0, null), modelId);
          PrefixCache host = new PrefixCache(new CacheOptions(true, PAGE, 0, big, 0, null), modelId);
          PrefixCache disk = new PrefixCache(new CacheOptions(true, PAGE, 0, 0, big, folder), modelId)) {
        double[] coldRun = ttft(model, fast, cold, attention);
        rows.add(row("cold prefill", coldRun, coldRun[0]));
        rows.add(row("fast tier (heap)", ttft(model, fast, warm, attention), coldRun[0]));
        seed(model, fast, List.of(host, disk), prefix, attention);
        rows.add(row("host tier (off-heap)", ttft(model, host, warm, attention), coldRun[0]));
        rows.add(row("disk tier (files)", ttft(model, disk, warm, attention), coldRun[0]));
        long pageBytes = fast.stats().fast().bytes() / Math.max(1, fast.stats().fast().pages());
        print(context, threads, pageBytes, rows);
      }
    } finally {
      try (var files = Files.list(folder)) {
        for (Path f : (Iterable<Path>) files::iterator) {
          Files.delete(f);
        }
      }
      Files.delete(folder);
    }
  }

  private static int[] question(long seed) {
    return new SplittableRandom(seed).ints(QUESTION, 0, 32000).toArray();
  }

  private static int[] concat(int[] a, int[] b) {
    int[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  /** Seconds to the first token and prompt tokens taken from the cache. */
  private static double[] ttft(Llama model, PrefixCache cache, int[] prompt, AttentionConfig attention) {
    try (Sequence s = model.newSequence(prompt.length + 8, 512)) {
      s.prefixCache(cache);
      long t0 = System.nanoTime();
      GenerationResult r = Generator.generate(s,
          GenerationRequest.builder(prompt).maxNewTokens(1).attention(attention).build(), null);
      return new double[] {(System.nanoTime() - t0) / 1e9, r.usage().cachedPromptTokens()};
    }
  }

  /**
   * Gives {@code targets} the prefix's pages that {@code source} holds, as if they had been computed
   * there and evicted: each target has no fast-tier budget, so a released page moves straight on.
   */
  private static void seed(Llama model, PrefixCache source, List<PrefixCache> targets, int[] prefix,
      AttentionConfig attention) {
    try (Sequence s = model.newSequence(prefix.length + 8, 512)) {
      s.prefixCache(source);
      s.attention(attention);
      s.reuseCachedPrefix(prefix);
      PagedKvCache paged = (PagedKvCache) s.cache();
      PageKey key = source.root(paged, attention);
      for (int p = 0; p < prefix.length / PAGE; p++) {
        key = key.child(prefix, p * PAGE, PAGE);
        for (PrefixCache target : targets) {
          if (target.offer(key, paged.share(p))) {
            target.release(key);
          }
        }
      }
    }
  }

  private static String[] row(String name, double[] run, double cold) {
    return new String[] {name, String.format(Locale.ROOT, "%d", (long) run[1]),
        String.format(Locale.ROOT, "%.3f", run[0]), String.format(Locale.ROOT, "%.1f%%", 100 * run[0] / cold),
        String.format(Locale.ROOT, "%.5f", run[0] / cold)};
  }

  private static void print(int context, int threads, long pageBytes, List<String[]> rows) throws IOException {
    System.out.printf(Locale.ROOT, "context %d + %d-token question, %d threads, page %d tokens = %.2f MiB%n",
        context, QUESTION, threads, PAGE, pageBytes / 1048576.0);
    System.out.printf(Locale.ROOT, "%-22s %14s %10s %10s%n", "prefix from", "cached tokens", "TTFT s", "of cold");
    StringBuilder json = new StringBuilder(String.format(Locale.ROOT,
        "{\"context\":%d,\"question\":%d,\"threads\":%d,\"page_tokens\":%d,\"page_bytes\":%d,\"results\":[",
        context, QUESTION, threads, PAGE, pageBytes));
    String sep = "";
    for (String[] r : rows) {
      System.out.printf(Locale.ROOT, "%-22s %14s %10s %10s%n", r[0], r[1], r[2], r[3]);
      json.append(sep).append(String.format(Locale.ROOT,
          "{\"from\":\"%s\",\"cached_tokens\":%s,\"ttft_s\":%s,\"fraction_of_cold\":%s}", r[0], r[1], r[2], r[4]));
      sep = ",";
    }
    Path out = Path.of("target", "prefix-cache-benchmark.json");
    Files.createDirectories(out.getParent());
    Files.writeString(out, json.append("]}\n").toString());
    System.out.println("wrote " + out.toAbsolutePath());
  }
}
