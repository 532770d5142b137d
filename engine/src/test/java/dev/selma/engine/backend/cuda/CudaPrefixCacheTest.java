package dev.selma.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.generate.DocumentReuse;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.Generator;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.CacheStats;
import dev.selma.engine.kv.ModelFingerprint;
import dev.selma.engine.kv.PrefixCache;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The prefix cache on the GPU: pages of device memory shared between sequences, moved to host memory
 * and disk and back. Prefill runs in chunks of one page, so that a request that takes its first pages
 * from the cache computes the rest in the same chunks as one that does not: the GPU's kernels are
 * deterministic for equal shapes, so the results are equal bit for bit.
 */
@Tag("gpu")
class CudaPrefixCacheTest {
  static final int PAGE = CudaBackend.KV_PAGE_TOKENS, CAPACITY = 4 * PAGE;
  static final ModelConfig CONFIG = RandomModel.config(97, 256, 2, 4, 1, false);
  static final LlamaWeights WEIGHTS = RandomModel.weights(CONFIG, 5);
  static final List<AttentionConfig> ATTENTIONS = List.of(AttentionConfig.dense(),
      AttentionConfig.selectAndMerge(16, 4, 2, 1, 1).withSelection(AttentionConfig.Selection.BOUND)
          .withPositions(new AttentionConfig.Reindexed()));

  static CudaBackend gpu;
  static Llama model;

  @TempDir Path dir;

  @BeforeAll
  static void open() {
    gpu = CudaBackend.open(CudaOptions.defaults());
    model = new Llama(CONFIG, WEIGHTS, gpu);
  }

  @AfterAll
  static void close() {
    gpu.close();
  }

  static int[] tokens(int n, long seed) {
    return new SplittableRandom(seed).ints(n, 0, CONFIG.vocabSize()).toArray();
  }

  static PrefixCache cache(long fast, long host, long disk, Path folder) throws IOException {
    return new PrefixCache(new CacheOptions(true, PAGE, fast, host, disk, folder),
        ModelFingerprint.of(CONFIG, WEIGHTS));
  }

  static GenerationResult generate(PrefixCache cache, GenerationRequest request) {
    try (Sequence s = model.newSequence(CAPACITY, PAGE)) {
      if (cache != null) {
        s.prefixCache(cache);
      }
      return Generator.generate(s, request, null);
    }
  }

  /** Logits of every prompt token from the first one not taken from the cache. */
  static float[][] logits(PrefixCache cache, int[] prompt, AttentionConfig attention) {
    try (Sequence s = model.newSequence(CAPACITY, PAGE)) {
      if (cache != null) {
        s.prefixCache(cache);
      }
      s.attention(attention);
      int cached = s.reuseCachedPrefix(prompt);
      float[][] rows = s.appendAllLogits(Arrays.copyOfRange(prompt, cached, prompt.length));
      float[][] all = new float[prompt.length][];
      System.arraycopy(rows, 0, all, cached, rows.length);
      return all;
    }
  }

  static GenerationRequest request(int[] prompt, AttentionConfig attention) {
    return GenerationRequest.builder(prompt).maxNewTokens(8).attention(attention).build();
  }

  static void assertSameFrom(int from, float[][] expected, float[][] actual) {
    for (int t = from; t < expected.length; t++) {
      assertArrayEquals(expected[t], actual[t], "logits of prompt token " + t);
    }
  }

  @Test
  void cachedDevicePagesGiveTheLogitsAndTokensOfAColdRun() throws IOException {
    int[] prompt = tokens(700, 1);
    int[] diverging = IntStream.concat(Arrays.stream(prompt, 0, 300), Arrays.stream(tokens(300, 2))).toArray();
    float[][][] cold = new float[ATTENTIONS.size()][][], coldDiverging = new float[ATTENTIONS.size()][][];
    int[][] coldTokens = new int[ATTENTIONS.size()][];
    for (int i = 0; i < ATTENTIONS.size(); i++) {
      cold[i] = logits(null, prompt, ATTENTIONS.get(i));
      coldDiverging[i] = logits(null, diverging, ATTENTIONS.get(i));
      coldTokens[i] = generate(null, request(prompt, ATTENTIONS.get(i))).tokens();
    }
    long before = gpu.deviceBytes(); // the backend's scratch has grown to what these runs need
    for (int i = 0; i < ATTENTIONS.size(); i++) {
      AttentionConfig attention = ATTENTIONS.get(i);
      GenerationRequest request = request(prompt, attention);
      try (PrefixCache cache = cache(1L << 30, 0, 0, null)) {
        assertEquals(0, generate(cache, request).usage().cachedPromptTokens(), "cold");
        GenerationResult warm = generate(cache, request);
        assertEquals(2 * PAGE, warm.usage().cachedPromptTokens(), "two full pages reused");
        assertArrayEquals(coldTokens[i], warm.tokens(), attention.toString());
        assertSameFrom(2 * PAGE, cold[i], logits(cache, prompt, attention));
        // Shares one page with the prompt, then goes its own way; the shared pages stay as they were.
        assertSameFrom(PAGE, coldDiverging[i], logits(cache, diverging, attention));
        assertSameFrom(2 * PAGE, cold[i], logits(cache, prompt, attention));
        CacheStats stats = cache.stats();
        assertEquals(0, stats.pagesInUse());
        assertEquals(3, stats.fast().pages(), "the prompt's two pages and the diverging prompt's second");
      }
    }
    gpu.synchronize();
    assertEquals(before, gpu.deviceBytes(), "every page went back to the pool");
  }

  @Test
  void pagesRestoredFromHostMemoryAndDiskAreExact() throws IOException {
    AttentionConfig attention = ATTENTIONS.get(1);
    int[] prompt = tokens(600, 3);
    float[][] cold = logits(null, prompt, attention);
    try (PrefixCache host = cache(0, 1L << 30, 0, null)) {
      logits(host, prompt, attention);
      assertSameFrom(2 * PAGE, cold, logits(host, prompt, attention));
      assertTrue(host.stats().host().hits() >= 2, host.stats().toString());
    }
    try (PrefixCache disk = cache(0, 0, 1L << 30, dir.resolve("pages"))) {
      logits(disk, prompt, attention);
      assertSameFrom(2 * PAGE, cold, logits(disk, prompt, attention));
      assertTrue(disk.stats().disk().hits() >= 2, disk.stats().toString());
    }
  }

  @Test
  void documentsPlacedFromTheCacheGiveWhatTheyGaveWhenComputed() throws IOException {
    int[] prefix = tokens(40, 4), a = tokens(300, 5), b = tokens(170, 6), question = tokens(20, 7);
    int[] prompt = IntStream.concat(IntStream.concat(Arrays.stream(prefix), Arrays.stream(a)),
        IntStream.concat(Arrays.stream(b), Arrays.stream(question))).toArray();
    int aEnd = prefix.length + a.length, bEnd = aEnd + b.length;
    GenerationRequest request = GenerationRequest.builder(prompt).maxNewTokens(8).attention(ATTENTIONS.get(0))
        .documents(DocumentReuse.of(prefix.length, new int[] {prefix.length, aEnd}, new int[] {aEnd, bEnd})).build();
    try (PrefixCache cache = cache(1L << 30, 0, 0, null)) {
      GenerationResult computed = generate(cache, request);
      GenerationResult placed = generate(cache, request);
      assertArrayEquals(computed.tokens(), placed.tokens());
      assertTrue(cache.stats().documentHits() >= 2, cache.stats().toString());
      assertTrue(placed.usage().cachedPromptTokens() > a.length, "the documents came from the cache");
    }
  }
}
