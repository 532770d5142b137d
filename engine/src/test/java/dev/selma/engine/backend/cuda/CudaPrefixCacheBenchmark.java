package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.eval.Scheme;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.kv.PrefixCache;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.ModelConfig;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Time to first token of a 64-token question after a long prefix on the GPU: cold (the whole prompt
 * read), after the prefix was cached in GPU memory, and after it was moved to host memory (the pages
 * come back over PCIe). A real architecture with dummy bf16 weights.
 *
 * <pre>java ... dev.selma.engine.backend.cuda.CudaPrefixCacheBenchmark [arch] [prefix tokens] [chunk] [scheme]
 * [auto|fp8] [gpu,host]</pre>
 *
 * <p>The fifth argument is the KV pages' precision; the last the tiers to measure, each after its own
 * cold prefill.
 */
public final class CudaPrefixCacheBenchmark {
  private CudaPrefixCacheBenchmark() {}

  public static void main(String[] args) throws Exception {
    String arch = args.length > 0 ? args[0] : "llama-3-8b";
    int prefix = args.length > 1 ? Integer.parseInt(args[1]) : 131072;
    int chunk = args.length > 2 ? Integer.parseInt(args[2]) : 4096;
    Scheme scheme = args.length > 3 ? Scheme.parse(args[3]) : Scheme.SELECT_MERGE_BOUND_REINDEXED;
    KvPrecision kv = args.length > 4 ? KvPrecision.parse(args[4]) : KvPrecision.AUTO;
    java.util.List<String> tiers = java.util.List.of((args.length > 5 ? args[5] : "gpu,host").split(","));
    int question = 64;
    ModelConfig config = DummyWeights.architecture(arch);
    AttentionConfig attention = scheme.config(prefix + question, config.maxPositionEmbeddings(),
        AttentionConfig.DEFAULT_BLOCK_SIZE);
    SplittableRandom random = new SplittableRandom(7);
    int[] shared = random.ints(prefix, 0, config.vocabSize()).toArray();
    try (CudaBackend gpu = CudaBackend.open(CudaOptions.defaults().withDummyWeights(1).withKvPrecision(kv))) {
      Llama model = new Llama(config, DummyWeights.tensors(config), gpu);
      System.out.printf(Locale.ROOT, "%s on %s, %s, prefix %d tokens + question %d, chunks of %d%n", arch, gpu.name(),
          scheme.label(), prefix, question, chunk);
      CudaKvCache.Element element = kv == KvPrecision.FP8 ? CudaKvCache.Element.FP8 : CudaKvCache.Element.BF16;
      long bytes = (long) (prefix / CudaBackend.KV_PAGE_TOKENS) * CudaKvCache.pageBytes(config, element);
      long budget = bytes + (1L << 30);
      String id = "dummy " + arch;
      try (PrefixCache device = new PrefixCache(new CacheOptions(true, CudaBackend.KV_PAGE_TOKENS, budget, 0, 0, null),
          id); PrefixCache host = new PrefixCache(new CacheOptions(true, CudaBackend.KV_PAGE_TOKENS, 0, budget, 0, null),
          id)) {
        for (PrefixCache cache : new PrefixCache[] {device, host}) {
          if (!tiers.contains(cache == device ? "gpu" : "host")) {
            continue;
          }
          String tier = cache == device ? "GPU memory" : "host memory";
          double cold = ttft(model, cache, attention, shared, random.ints(question, 0, config.vocabSize()).toArray(),
              chunk);
          double hit = ttft(model, cache, attention, shared, random.ints(question, 0, config.vocabSize()).toArray(),
              chunk);
          System.out.printf(Locale.ROOT, "prefix cached in %s: cold %.3f s, hit %.3f s (%.1f %% of cold)%s%n", tier,
              cold, hit, 100 * hit / cold, cache == host
                  ? String.format(Locale.ROOT, "; %.1f GB of pages back from the host at %.1f GB/s at most", bytes / 1e9,
                      bytes / 1e9 / hit)
                  : "");
          System.out.println("  " + cache.stats());
        }
      }
    }
  }

  /** Seconds from the request to the first token's logits, the prefix cache attached. */
  private static double ttft(Llama model, PrefixCache cache, AttentionConfig attention, int[] shared, int[] question,
      int chunk) {
    int[] prompt = IntStream.concat(Arrays.stream(shared), Arrays.stream(question)).toArray();
    long t0 = System.nanoTime();
    try (Sequence s = model.newSequence(prompt.length + 16, chunk)) {
      s.prefixCache(cache);
      s.attention(attention);
      int cached = s.reuseCachedPrefix(prompt);
      s.append(Arrays.copyOfRange(prompt, cached, prompt.length));
      return (System.nanoTime() - t0) / 1e9;
    }
  }
}
