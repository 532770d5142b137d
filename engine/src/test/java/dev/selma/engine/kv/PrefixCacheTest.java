package dev.selma.engine.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.backend.ChoosingAhead;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.Generator;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Exact prefix reuse: with the cache cold, warm, partly evicted or restored from slower tiers, a
 * request computes bit for bit the logits and greedy tokens it computes without any cache. A tiny
 * random model with pages of 16 tokens keeps chains long and runs fast.
 */
class PrefixCacheTest {
  static final int PAGE = 16;
  static final CpuBackend BACKEND = new CpuBackend(2, PAGE);
  static final ModelConfig CONFIG = RandomModel.config(64, 32, 2, 4, 2, false);
  static final LlamaWeights WEIGHTS = RandomModel.weights(CONFIG, 5);
  static final Llama MODEL = new Llama(CONFIG, WEIGHTS, BACKEND);
  static final String MODEL_ID = ModelFingerprint.of(CONFIG, WEIGHTS);
  /** Bytes of one page of this model: 2 layers × (keys + values + key and query sums). */
  static final long PAGE_BYTES = 2L * (2 * 2 * PAGE * 8 + 2 * 2 * 8) * Float.BYTES;
  /** Prefill chunks that do not line up with pages, so reuse starts inside a chunk. */
  static final int CHUNK = 24;

  @TempDir Path dir;

  /**
   * Exactness is bit for bit, and the CPU kernels' vector reductions (Vector API {@code reduceLanes})
   * add lanes in one order when interpreted and in another once C2 compiles them: the same request
   * can differ in the last bits between a cold and a warm JVM, cache or no cache. Compiling the
   * kernels before any reference is computed keeps that out of these comparisons.
   */
  @BeforeAll
  static void compileKernels() {
    for (AttentionConfig attention : attentions().toList()) {
      for (int r = 0; r < 10; r++) {
        try (Sequence s = MODEL.newSequence(256, 7)) {
          s.attention(attention);
          s.appendAllLogits(tokens(96, r));
        }
      }
    }
  }

  @AfterAll
  static void close() {
    BACKEND.close();
  }

  static int[] tokens(int n, long seed) {
    return new SplittableRandom(seed).ints(n, 0, CONFIG.vocabSize()).toArray();
  }

  static int[] concat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
  }

  static CacheOptions options(long fast, long host, long disk, Path folder) {
    return new CacheOptions(true, PAGE, fast, host, disk, folder);
  }

  static PrefixCache cache(CacheOptions options) {
    try {
      return new PrefixCache(options, MODEL_ID);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /** The prompt's logits from the first token not taken from the cache on, and how many were taken. */
  record Logits(float[][] rows, int cached) {}

  static Logits logits(PrefixCache cache, int[] prompt, AttentionConfig attention) {
    try (Sequence s = MODEL.newSequence(256, CHUNK)) {
      if (cache != null) {
        s.prefixCache(cache);
      }
      s.attention(attention);
      if (s.reuseCachedPrefix(prompt) == prompt.length) {
        s.truncate(prompt.length - 1);
      }
      int cached = s.length();
      return new Logits(s.appendAllLogits(Arrays.copyOfRange(prompt, cached, prompt.length)), cached);
    }
  }

  static GenerationResult greedy(PrefixCache cache, int[] prompt, AttentionConfig attention) {
    try (Sequence s = MODEL.newSequence(256, CHUNK)) {
      if (cache != null) {
        s.prefixCache(cache);
      }
      return Generator.generate(s, GenerationRequest.builder(prompt).maxNewTokens(6).attention(attention).build(),
          null);
    }
  }

  /** What a request computes without any cache. */
  record Reference(float[][] logits, int[] tokens) {}

  static Reference reference(int[] prompt, AttentionConfig attention) {
    return new Reference(logits(null, prompt, attention).rows(), greedy(null, prompt, attention).tokens());
  }

  /** Checks a run with {@code cache} against the reference; returns the prompt tokens it reused. */
  static int assertExact(Reference ref, PrefixCache cache, int[] prompt, AttentionConfig attention) {
    GenerationResult g = greedy(cache, prompt, attention);
    assertArrayEquals(ref.tokens(), g.tokens(), "greedy tokens");
    Logits l = logits(cache, prompt, attention);
    for (int i = 0; i < l.rows().length; i++) {
      assertArrayEquals(ref.logits()[l.cached() + i], l.rows()[i], "logits of prompt token " + (l.cached() + i));
    }
    return g.usage().cachedPromptTokens();
  }

  static Stream<AttentionConfig> attentions() {
    return Stream.of(AttentionConfig.dense(), AttentionConfig.selectAndMerge(16, 2, 1, 1, 1),
        AttentionConfig.dense().withPositions(new AttentionConfig.SelfExtend(4, 24)));
  }

  @ParameterizedTest
  @MethodSource("attentions")
  void coldWarmAndPartlyCachedPrefixesGiveIdenticalLogitsAndTokens(AttentionConfig attention) {
    int[] prompt = tokens(100, 1), fullPages = Arrays.copyOf(prompt, 96);
    int[] diverging = concat(Arrays.copyOf(prompt, 40), tokens(30, 2));
    Reference ref = reference(prompt, attention);
    try (PrefixCache cache = cache(options(1 << 20, 0, 0, null))) {
      assertEquals(0, assertExact(ref, cache, prompt, attention), "cold");
      assertEquals(96, assertExact(ref, cache, prompt, attention), "warm");
      // A prompt that is all cached pages still computes its last token, on a copy of the last page.
      assertEquals(95, assertExact(reference(fullPages, attention), cache, fullPages, attention));
      assertEquals(32, assertExact(reference(diverging, attention), cache, diverging, attention));
      assertEquals(96, assertExact(ref, cache, prompt, attention), "the shared pages were not written");
      CacheStats stats = cache.stats();
      assertEquals(0, stats.pagesInUse());
      assertEquals(6 + 2, stats.fast().pages(), "the prompt's six pages and the diverging prompt's third and fourth");
    }
    try (PrefixCache cache = cache(options(1 << 20, 0, 0, null))) {
      assertEquals(0, assertExact(reference(Arrays.copyOf(prompt, 50), attention), cache,
          Arrays.copyOf(prompt, 50), attention));
      assertEquals(48, assertExact(ref, cache, prompt, attention), "three of six pages cached");
    }
  }

  /**
   * Pages completed by tokens whose steps were queued before their ids were read (greedy generation on a
   * backend that chooses ahead, as a GPU does) are offered under those ids, the last one when the
   * sequence closes: a later prompt of the prompt and the answer reuses them as it does a step-by-step
   * generation's.
   */
  @Test
  void pagesCompletedByStepsQueuedAheadAreKeyedByTheirTokens() {
    Llama ahead = new Llama(CONFIG, WEIGHTS, ChoosingAhead.of(BACKEND));
    int[] prompt = tokens(20, 77);
    int[][] answers = new int[2][];
    for (int m = 0; m < 2; m++) {
      Llama model = m == 0 ? MODEL : ahead;
      try (PrefixCache cache = cache(options(1 << 20, 0, 0, null))) {
        try (Sequence s = model.newSequence(256, CHUNK)) {
          s.prefixCache(cache);
          // 20 + 28 tokens appended: the last of them completes the third page
          answers[m] = Generator.generate(s, GenerationRequest.builder(prompt).maxNewTokens(29).build(), null).tokens();
          assertEquals(48, s.length());
        }
        int[] next = concat(prompt, Arrays.copyOf(answers[m], 28), new int[] {1});
        try (Sequence s = model.newSequence(256, CHUNK)) {
          s.prefixCache(cache);
          assertEquals(48, s.reuseCachedPrefix(next));
        }
      }
    }
    assertArrayEquals(answers[0], answers[1]);
  }

  @Test
  void aPartlyEvictedCacheReusesWhatIsLeft() {
    AttentionConfig attention = AttentionConfig.dense();
    int[][] prompts = {tokens(100, 1), tokens(100, 3), tokens(100, 4)};
    Reference[] refs = Arrays.stream(prompts).map(p -> reference(p, attention)).toArray(Reference[]::new);
    try (PrefixCache cache = cache(options(8 * PAGE_BYTES, 0, 0, null))) {
      for (int round = 0; round < 3; round++) {
        for (int i = 0; i < prompts.length; i++) {
          assertExact(refs[i], cache, prompts[i], attention);
        }
      }
      CacheStats stats = cache.stats();
      assertTrue(stats.fast().evictions() > 0, "18 pages do not fit a budget of 8");
      assertTrue(stats.fast().bytes() <= 8 * PAGE_BYTES);
      assertTrue(stats.hits() > 0, "some pages survive");
    }
  }

  @ParameterizedTest
  @MethodSource("attentions")
  void pagesRestoredFromTheHostAndDiskTiersAreExact(AttentionConfig attention) throws IOException {
    int[] prompt = tokens(100, 1);
    Reference ref = reference(prompt, attention);
    try (PrefixCache host = cache(options(0, 1 << 20, 0, null))) {
      assertExact(ref, host, prompt, attention);
      assertEquals(96, assertExact(ref, host, prompt, attention));
      assertTrue(host.stats().host().hits() >= 6);
      assertEquals(0, host.stats().fast().bytes(), "the fast tier has no budget");
    }
    Path folder = dir.resolve("pages");
    try (PrefixCache disk = cache(options(0, 0, 1 << 20, folder))) {
      assertExact(ref, disk, prompt, attention);
      assertEquals(96, assertExact(ref, disk, prompt, attention));
      assertTrue(disk.stats().disk().hits() >= 6);
    }
    // A new cache on the folder (an engine restart) adopts the page files.
    try (PrefixCache restarted = cache(options(0, 0, 1 << 20, folder))) {
      assertEquals(6, restarted.stats().disk().pages());
      assertEquals(96, assertExact(ref, restarted, prompt, attention));
    }
    // All three tiers, each too small for the prompt.
    try (PrefixCache tiers = cache(options(2 * PAGE_BYTES, 2 * PAGE_BYTES, 1 << 20, dir.resolve("tiers")))) {
      assertExact(ref, tiers, prompt, attention);
      assertEquals(96, assertExact(ref, tiers, prompt, attention));
      CacheStats s = tiers.stats();
      assertTrue(s.fast().evictions() > 0 && s.host().evictions() > 0 && s.disk().hits() > 0, s.toString());
    }
  }

  @Test
  void aCorruptedDiskPageIsDetectedDroppedAndRecomputed() throws IOException {
    AttentionConfig attention = AttentionConfig.dense();
    int[] prompt = tokens(100, 1);
    Reference ref = reference(prompt, attention);
    Path folder = dir.resolve("pages");
    try (PrefixCache disk = cache(options(0, 0, 1 << 20, folder))) {
      assertExact(ref, disk, prompt, attention);
    }
    // Flip one bit in the payload of the chain's third page.
    PageKey key = PageKey.root(MODEL_ID + "\n" + pageFormat() + "\n" + attention);
    for (int p = 0; p < 3; p++) {
      key = key.child(prompt, p * PAGE, PAGE);
    }
    Path third = PageFile.path(folder, key);
    try (FileChannel ch = FileChannel.open(third, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer b = ByteBuffer.allocate(1);
      long at = ch.size() / 2;
      ch.read(b, at);
      b.put(0, (byte) (b.get(0) ^ 0x10)).rewind();
      ch.write(b, at);
    }
    try (PrefixCache disk = cache(options(0, 0, 1 << 20, folder))) {
      GenerationResult g = greedy(disk, prompt, attention);
      assertArrayEquals(ref.tokens(), g.tokens());
      assertEquals(2 * PAGE, g.usage().cachedPromptTokens(), "reuse stops before the corrupt page");
      assertEquals(1, disk.stats().corruptPages());
      // The recomputed page replaced the corrupt one: the whole prompt is cached again.
      assertEquals(96, assertExact(ref, disk, prompt, attention));
    }
  }

  private static String pageFormat() {
    try (Sequence s = MODEL.newSequence(16, 16)) {
      return ((PagedKvCache) s.cache()).pageFormat();
    }
  }

  @Test
  void pagesInUseAreNeverEvictedAndReturnWhenReleased() {
    AttentionConfig attention = AttentionConfig.dense();
    int[] prompt = tokens(100, 1);
    try (PrefixCache cache = cache(options(0, 0, 0, null))) {
      try (Sequence a = MODEL.newSequence(256, CHUNK); Sequence b = MODEL.newSequence(256, CHUNK)) {
        a.prefixCache(cache);
        b.prefixCache(cache);
        a.append(prompt);
        CacheStats held = cache.stats();
        assertEquals(6, held.pagesInUse(), "in use although the fast tier has no budget");
        assertEquals(6 * PAGE_BYTES, held.bytesInUse());
        assertEquals(96, b.reuseCachedPrefix(prompt), "a second sequence shares them");
        assertEquals(6, cache.stats().pagesInUse());
        b.truncate(40);
        assertEquals(6, cache.stats().pagesInUse(), "a still holds every page");
      }
      CacheStats after = cache.stats();
      assertEquals(0, after.pagesInUse());
      assertEquals(0, after.bytesInUse());
      assertEquals(6, after.fast().evictions(), "released into a tier without budget: dropped");
      assertEquals(0, after.fast().pages());
    }
  }

  @Test
  void statisticsCountHitsMissesAndInserts() {
    AttentionConfig attention = AttentionConfig.dense();
    int[] prompt = tokens(100, 1);
    try (PrefixCache cache = cache(options(1 << 20, 0, 0, null))) {
      greedy(cache, prompt, attention); // 6 full prompt pages missed; 6 inserted (100 + 6 tokens: no 7th page)
      greedy(cache, prompt, attention);
      CacheStats s = cache.stats();
      assertEquals(6, s.hits());
      assertEquals(96, s.hitTokens());
      assertEquals(6, s.misses());
      assertEquals(6, s.inserts());
      assertEquals(6, s.fast().hits());
      assertEquals(6, s.fast().pages());
      assertEquals(6 * PAGE_BYTES, s.fast().bytes());
      assertEquals(1 << 20, s.fast().budgetBytes());
    }
  }

  @Test
  void anotherAttentionConfigurationNeverSharesPages() {
    int[] prompt = tokens(100, 1);
    AttentionConfig select = AttentionConfig.selectAndMerge(16, 2, 1, 1, 1);
    Reference ref = reference(prompt, select);
    try (PrefixCache cache = cache(options(1 << 20, 0, 0, null))) {
      greedy(cache, prompt, AttentionConfig.dense());
      assertEquals(0, assertExact(ref, cache, prompt, select));
    }
  }

  @Test
  void optionsAreValidatedNamingTheParameter() throws IOException {
    assertMessage("kv_cache.page_tokens", () -> new CacheOptions(true, 100, 0, 0, 0, null));
    assertMessage("kv_cache.page_tokens", () -> new CacheOptions(true, 8, 0, 0, 0, null));
    assertMessage("kv_cache.fast_bytes", () -> new CacheOptions(true, 256, -1, 0, 0, null));
    assertMessage("kv_cache.host_bytes", () -> new CacheOptions(true, 256, 0, -1, 0, null));
    assertMessage("kv_cache.disk_bytes", () -> new CacheOptions(true, 256, 0, 0, -1, null));
    assertMessage("kv_cache.disk_folder must be given", () -> new CacheOptions(true, 256, 0, 0, 1, null));
    assertMessage("kv_cache.disk_bytes is 0", () -> new CacheOptions(true, 256, 0, 0, 0, dir));
    Path file = Files.writeString(dir.resolve("not-a-folder"), "x");
    assertMessage("kv_cache.disk_folder", () -> new PrefixCache(options(0, 0, 1, file), MODEL_ID));
    try (PrefixCache other = new PrefixCache(new CacheOptions(true, 32, 1, 0, 0, null), MODEL_ID);
        Sequence s = MODEL.newSequence(64, 16)) {
      assertMessage("pages of 32 tokens but this sequence's KV cache has pages of 16",
          () -> s.prefixCache(other));
    }
  }

  interface Action {
    void run() throws Exception;
  }

  static void assertMessage(String expected, Action action) {
    try {
      action.run();
    } catch (Exception e) {
      assertTrue(e.getMessage().contains(expected), "'" + e.getMessage() + "' should contain '" + expected + "'");
      return;
    }
    throw new AssertionError("expected an error containing '" + expected + "'");
  }

  /** Leftover files of an interrupted write are removed, unknown files left alone. */
  @Test
  void adoptingAFolderDeletesIncompleteWrites() throws IOException {
    Path folder = Files.createDirectories(dir.resolve("pages"));
    Path tmp = Files.writeString(folder.resolve(new PageKey(1, 2).hex() + PageFile.SUFFIX + ".tmp"), "partial");
    Path other = Files.writeString(folder.resolve("notes.txt"), "mine");
    try (PrefixCache cache = cache(options(0, 0, 1 << 20, folder))) {
      assertTrue(Files.notExists(tmp));
      assertTrue(Files.exists(other));
      assertEquals(0, cache.stats().disk().pages());
    }
  }

  static List<int[]> overlapping(int n) {
    // Prompts combine shared "documents" in different orders, then a question of their own.
    List<int[]> docs = List.of(tokens(40, 11), tokens(24, 12), tokens(56, 13));
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] a = docs.get(i % 3), b = docs.get((i / 3) % 3);
      prompts.add(concat(a, b, tokens(5 + i % 7, 100 + i)));
    }
    return prompts;
  }

  private static final int THREADS = 16, ROUNDS = 12;

  /**
   * 16 threads generating over prompts that share documents in different orders, through a cache whose
   * tiers are all smaller than the working set, so pages are pinned, shared, evicted, moved and restored
   * all the time.
   */
  @Test
  void sixteenThreadsOverOverlappingPrefixesMatchSingleThreadedRuns() throws Exception {
    AttentionConfig attention = AttentionConfig.dense();
    List<int[]> prompts = overlapping(18);
    int[][] expected = prompts.stream().map(p -> greedy(null, p, attention).tokens())
        .toArray(int[][]::new);
    long page = PAGE_BYTES;
    CacheOptions options = options(6 * page, 6 * page, 12 * page, dir.resolve("pages"));
    ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
    try (PrefixCache cache = cache(options)) {
      AtomicBoolean running = new AtomicBoolean(true);
      Thread monitor = Thread.ofPlatform().start(() -> {
        while (running.get()) {
          CacheStats s = cache.stats();
          for (CacheStats.Tier t : List.of(s.fast(), s.host(), s.disk())) {
            if (t.bytes() > t.budgetBytes()) {
              problems.add("over budget: " + s);
            }
          }
          Thread.onSpinWait();
        }
      });
      CountDownLatch start = new CountDownLatch(1);
      Thread[] workers = new Thread[THREADS];
      for (int w = 0; w < THREADS; w++) {
        int id = w;
        workers[w] = Thread.ofPlatform().start(() -> {
          try {
            start.await();
            for (int r = 0; r < ROUNDS; r++) {
              int i = (id * 5 + r * 7) % prompts.size();
              GenerationResult g = greedy(cache, prompts.get(i), attention);
              if (!java.util.Arrays.equals(expected[i], g.tokens())) {
                problems.add("thread " + id + " prompt " + i + ": " + java.util.Arrays.toString(g.tokens()));
              }
            }
          } catch (Throwable e) {
            problems.add("thread " + id + ": " + e);
          }
        });
      }
      start.countDown();
      for (Thread t : workers) {
        t.join();
      }
      running.set(false);
      monitor.join();
      assertEquals(List.of(), List.copyOf(problems));

      CacheStats s = cache.stats();
      assertEquals(0, s.pagesInUse(), "every pin was released");
      assertEquals(0, s.bytesInUse());
      assertTrue(s.hits() > 0 && s.fast().evictions() > 0 && s.host().evictions() > 0, s.toString());
      assertTrue(s.host().hits() + s.disk().hits() > 0, "pages came back from slower tiers: " + s);
      assertEquals(0, s.corruptPages());
      // Sequential runs through the cache as the threads left it still give the same tokens.
      for (int i = 0; i < prompts.size(); i++) {
        assertArrayEquals(expected[i], greedy(cache, prompts.get(i), attention).tokens());
      }
    }
  }
}
