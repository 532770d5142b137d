package dev.selma.engine.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.generate.DocumentReuse;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.Generator;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Document reuse: a document's keys and values, computed once right after the prompt's prefix, are
 * placed at any offset of later prompts. A tiny random model with pages of 16 tokens; the prefix and
 * the documents fill no whole page or 16-token granule, so nothing lines up.
 */
class DocumentReuseTest {
  static final int PAGE = 16, CHUNK = 24, CAPACITY = 320, ANSWER = 6;
  static final CpuBackend BACKEND = new CpuBackend(2, PAGE);
  static final ModelConfig CONFIG = RandomModel.config(64, 32, 2, 4, 2, false);
  static final LlamaWeights WEIGHTS = RandomModel.weights(CONFIG, 5);
  static final Llama MODEL = new Llama(CONFIG, WEIGHTS, BACKEND);
  static final String MODEL_ID = ModelFingerprint.of(CONFIG, WEIGHTS);
  static final int[] PREFIX = tokens(21, 1);
  static final int[] A = tokens(37, 11), B = tokens(21, 12), C = tokens(50, 13), D = tokens(29, 14);

  @TempDir Path dir;

  /** Bit-for-bit comparisons need the kernels compiled first (see {@link PrefixCacheTest#compileKernels}). */
  @BeforeAll
  static void compileKernels() {
    for (AttentionConfig attention : attentions().toList()) {
      for (int r = 0; r < 10; r++) {
        try (Sequence s = MODEL.newSequence(CAPACITY, 7)) {
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

  static Stream<AttentionConfig> attentions() {
    return Stream.of(AttentionConfig.dense(), AttentionConfig.selectAndMerge(16, 2, 1, 1, 1));
  }

  static int[] tokens(int n, long seed) {
    return new SplittableRandom(seed).ints(n, 0, CONFIG.vocabSize()).toArray();
  }

  static int[] concat(List<int[]> parts) {
    return parts.stream().flatMapToInt(Arrays::stream).toArray();
  }

  PrefixCache cache() {
    return cache(new CacheOptions(true, PAGE, 1 << 22, 0, 0, null));
  }

  static PrefixCache cache(CacheOptions options) {
    try {
      return new PrefixCache(options, MODEL_ID);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /** A prompt: the prefix, each document after a 3-token header of its own, then a question. */
  record Prompt(int[] ids, DocumentReuse documents) {
    DocumentReuse.Range range(int document) {
      return documents.documents().get(document);
    }
  }

  static Prompt prompt(long question, int[]... documents) {
    List<int[]> parts = new ArrayList<>(List.of(PREFIX));
    int[][] ranges = new int[documents.length][];
    int at = PREFIX.length;
    for (int i = 0; i < documents.length; i++) {
      parts.add(tokens(3, 1000 + i + 10 * question));
      at += 3;
      ranges[i] = new int[] {at, at + documents[i].length};
      parts.add(documents[i]);
      at += documents[i].length;
    }
    parts.add(tokens(9, question));
    return new Prompt(concat(parts), DocumentReuse.of(PREFIX.length, ranges));
  }

  static GenerationRequest request(Prompt p, int boundaryTokens, AttentionConfig attention) {
    return GenerationRequest.builder(p.ids()).maxNewTokens(ANSWER).attention(attention)
        .documents(p.documents().withBoundaryTokens(boundaryTokens)).build();
  }

  static Sequence sequence(PrefixCache cache) {
    Sequence s = MODEL.newSequence(CAPACITY, CHUNK);
    if (cache != null) {
      s.prefixCache(cache);
    }
    return s;
  }

  static GenerationResult generate(PrefixCache cache, GenerationRequest request) {
    try (Sequence s = sequence(cache)) {
      return Generator.generate(s, request, null);
    }
  }

  /** What a prompt computes exactly: its tokens, and the keys and values of its prompt tokens. */
  record Exact(int[] tokens, float[][] rows) {}

  static Exact exact(Prompt p, AttentionConfig attention) {
    try (Sequence s = sequence(null)) {
      GenerationResult r = Generator.generate(s,
          GenerationRequest.builder(p.ids()).maxNewTokens(ANSWER).attention(attention).build(), null);
      return new Exact(r.tokens(), rows(s, 0, p.ids().length));
    }
  }

  /** The keys and values of {@code document} computed right after the prefix and nothing else. */
  static float[][] alone(int[] document, AttentionConfig attention) {
    try (Sequence s = sequence(null)) {
      s.attention(attention);
      s.append(PREFIX);
      s.append(document);
      return rows(s, PREFIX.length, PREFIX.length + document.length);
    }
  }

  /**
   * Tokens {@code [from, to)} of a sequence: per token, every layer's keys then values, read from the
   * CPU cache's host page layout ({@code [layer][keys, values, key sums, query sums]}, each KV head's
   * rows contiguous).
   */
  static float[][] rows(Sequence s, int from, int to) {
    PagedKvCache cache = (PagedKvCache) s.cache();
    int layers = CONFIG.numLayers(), heads = CONFIG.numKvHeads(), d = CONFIG.headDim();
    long pageFloats = (long) heads * PAGE * d, sumFloats = (long) (PAGE / 16) * heads * d;
    long layerFloats = 2 * pageFloats + 2 * sumFloats;
    ValueLayout.OfFloat f = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    float[][] out = new float[to - from][2 * layers * heads * d];
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment page = arena.allocate(cache.pageHostBytes());
      for (int t = from; t < to; t++) {
        if (t == from || t % PAGE == 0) {
          cache.share(t / PAGE).download(page);
        }
        int i = 0;
        for (int l = 0; l < layers; l++) {
          for (int kv = 0; kv < 2; kv++) {
            for (int h = 0; h < heads; h++) {
              long at = l * layerFloats + kv * pageFloats + ((long) h * PAGE + t % PAGE) * d;
              for (int c = 0; c < d; c++) {
                out[t - from][i++] = page.getAtIndex(f, at + c);
              }
            }
          }
        }
      }
    }
    return out;
  }

  static void assertRowsEqual(float[][] expected, float[][] actual, String what) {
    assertEquals(expected.length, actual.length, what);
    for (int t = 0; t < expected.length; t++) {
      assertArrayEquals(expected[t], actual[t], what + ", token " + t);
    }
  }

  /** The first layer's half of a token's row: its keys and values depend on the token alone. */
  static float[] firstLayer(float[] row) {
    return Arrays.copyOf(row, row.length / CONFIG.numLayers());
  }

  static float[] deeperLayers(float[] row) {
    return Arrays.copyOfRange(row, row.length / CONFIG.numLayers(), row.length);
  }

  @ParameterizedTest
  @MethodSource("attentions")
  void aDocumentPlacedAtAnotherOffsetAndInAnotherOrderHoldsTheKeysAndValuesItComputesAlone(
      AttentionConfig attention) {
    Prompt first = prompt(1, A, B), second = prompt(2, C, B, A);
    Exact exact = exact(second, attention);
    try (PrefixCache cache = cache()) {
      generate(cache, request(first, 0, attention)); // encodes A and B after the prefix and keeps them
      try (Sequence s = sequence(cache)) {
        GenerationResult r = Generator.generate(s, request(second, 0, attention), null);
        assertEquals(ANSWER, r.tokens().length, "it generates");
        assertEquals(PAGE + A.length + B.length, r.usage().cachedPromptTokens(),
            "the prefix's full page and the documents found in the cache");
        int[][] documents = {C, B, A};
        for (int i = 0; i < documents.length; i++) {
          DocumentReuse.Range at = second.range(i);
          float[][] placed = rows(s, at.from(), at.to());
          assertRowsEqual(alone(documents[i], attention), placed, "document " + i);
          float[] inPrompt = exact.rows()[at.to() - 1], reused = placed[placed.length - 1];
          assertArrayEquals(firstLayer(inPrompt), firstLayer(reused), "the first layer sees only the token");
          assertFalse(Arrays.equals(deeperLayers(inPrompt), deeperLayers(reused)),
              "deeper layers of a document's last token did not see the documents before it");
        }
        // The tokens between and after the documents are computed in the prompt, on the placed rows.
        DocumentReuse.Range c = second.range(0);
        assertRowsEqual(Arrays.copyOf(exact.rows(), c.from()), rows(s, 0, c.from()), "before the first document");
      }
    }
  }

  @Test
  void boundaryTokensAreComputedInThePromptAndCoveringEveryDocumentIsExact() {
    AttentionConfig attention = AttentionConfig.dense();
    Prompt warm = prompt(1, A, B, C), p = prompt(2, C, A, B);
    Exact exact = exact(p, attention);
    try (PrefixCache cache = cache()) {
      generate(cache, request(warm, 0, attention));
      // 40 boundary tokens: A (37) and B (21) are computed whole; C (50) only from its 41st token on.
      try (Sequence s = sequence(cache)) {
        Generator.generate(s, request(p, 40, attention), null);
        DocumentReuse.Range c = p.range(0);
        assertRowsEqual(Arrays.copyOf(exact.rows(), c.from() + 40), rows(s, 0, c.from() + 40),
            "everything up to C's boundary is the exact prompt");
        assertRowsEqual(Arrays.copyOfRange(alone(C, attention), 40, C.length), rows(s, c.from() + 40, c.to()),
            "the rest of C is its stand-alone encoding");
      }
      // 50 boundary tokens cover every document: the prompt is computed exactly.
      try (Sequence s = sequence(cache)) {
        GenerationResult r = Generator.generate(s, request(p, C.length, attention), null);
        assertArrayEquals(exact.tokens(), r.tokens());
        assertRowsEqual(exact.rows(), rows(s, 0, p.ids().length), "the whole prompt");
      }
    }
  }

  @Test
  void documentReuseIsOptInAndLeavesExactRequestsExact() {
    AttentionConfig attention = AttentionConfig.dense();
    Prompt p1 = prompt(1, A, B), p2 = prompt(2, B, C, A);
    assertNull(GenerationRequest.builder(p1.ids()).build().documents(), "off by default");
    Exact exact1 = exact(p1, attention), exact2 = exact(p2, attention);
    try (PrefixCache cache = cache()) {
      GenerationResult placed = generate(cache, request(p2, 0, attention));
      generate(cache, request(p1, 0, attention));
      // Pages after a placed document were not offered: exact requests through the cache stay exact.
      for (Prompt p : List.of(p1, p2)) {
        Exact e = p == p1 ? exact1 : exact2;
        try (Sequence s = sequence(cache)) {
          GenerationResult r = Generator.generate(s,
              GenerationRequest.builder(p.ids()).maxNewTokens(ANSWER).attention(attention).build(), null);
          assertArrayEquals(e.tokens(), r.tokens());
          assertRowsEqual(e.rows(), rows(s, 0, p.ids().length), "exact after document reuse");
        }
      }
      // Without the prefix cache there is nothing to reuse: documents are computed in the prompt.
      GenerationRequest noCache = GenerationRequest.builder(p2.ids()).maxNewTokens(ANSWER).attention(attention)
          .documents(p2.documents()).usePrefixCache(false).build();
      assertArrayEquals(exact2.tokens(), generate(cache, noCache).tokens());
      assertArrayEquals(exact2.tokens(), generate(null, request(p2, 0, attention)).tokens());
      // A sequence that placed documents keeps only its exact tokens for the next request.
      try (Sequence s = sequence(cache)) {
        assertArrayEquals(placed.tokens(), Generator.generate(s, request(p2, 0, attention), null).tokens());
        assertEquals(p2.range(0).from(), s.exactLength());
        GenerationResult r = Generator.generate(s,
            GenerationRequest.builder(p2.ids()).maxNewTokens(ANSWER).attention(attention).build(), null);
        assertArrayEquals(exact2.tokens(), r.tokens());
        assertEquals(s.length(), s.exactLength());
      }
    }
  }

  @Test
  void badDocumentRangesAreRejectedNamingTheDocument() {
    int[] ids = tokens(50, 1);
    assertMessage("document 2 [15, 30) overlaps document 1 [10, 20)", () -> DocumentReuse.of(5, new int[] {10, 20},
        new int[] {15, 30}));
    assertMessage("must be in prompt order", () -> DocumentReuse.of(5, new int[] {30, 40}, new int[] {10, 20}));
    assertMessage("document 1 [10, 10) is empty", () -> DocumentReuse.of(5, new int[] {10, 10}));
    assertMessage("document 1 [10, 20) starts inside the prefix of 12 tokens",
        () -> DocumentReuse.of(12, new int[] {10, 20}));
    assertMessage("document 1 must be given as {from, to}, got 3 numbers",
        () -> DocumentReuse.of(5, new int[] {10, 20, 30}));
    assertMessage("prefix must be >= 0", () -> DocumentReuse.of(-1));
    assertMessage("boundary tokens must be >= 0", () -> DocumentReuse.of(5).withBoundaryTokens(-1));
    assertMessage("document 2 [40, 60) lies outside the prompt of 50 tokens", () -> GenerationRequest.builder(ids)
        .documents(DocumentReuse.of(5, new int[] {10, 20}, new int[] {40, 60})).build());
    assertMessage("prefix of 60 tokens is longer than the prompt of 50",
        () -> GenerationRequest.builder(ids).documents(DocumentReuse.of(60)).build());
  }

  static void assertMessage(String expected, Runnable action) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, action::run);
    assertTrue(e.getMessage().contains(expected), "'" + e.getMessage() + "' should contain '" + expected + "'");
  }

  @Test
  void statisticsCountDocumentHitsAndMisses() {
    AttentionConfig attention = AttentionConfig.dense();
    try (PrefixCache cache = cache()) {
      generate(cache, request(prompt(1, A, B), 0, attention));
      CacheStats cold = cache.stats();
      assertEquals(0, cold.documentHits());
      assertEquals(2, cold.documentMisses());
      generate(cache, request(prompt(2, B, C, A), 0, attention));
      CacheStats warm = cache.stats();
      assertEquals(2, warm.documentHits());
      assertEquals(A.length + B.length, warm.documentHitTokens());
      assertEquals(3, warm.documentMisses(), "C was new");
      // A document no longer than its boundary is computed in the prompt and never looked up.
      generate(cache, request(prompt(3, B), B.length, attention));
      assertEquals(warm.documentHits(), cache.stats().documentHits());
      assertEquals(warm.documentMisses(), cache.stats().documentMisses());
      assertEquals(0, cache.stats().pagesInUse());
    }
  }

  private static final int THREADS = 8, ROUNDS = 6;

  /**
   * 8 threads placing four shared documents in different combinations and orders, through tiers all
   * smaller than the working set, so that documents' pages are pinned, evicted, moved, restored and
   * encoded again while others read them.
   */
  @Test
  void threadsPlacingSharedDocumentsInDifferentOrdersMatchSingleThreadedRunsAndReleaseEveryPage()
      throws Exception {
    AttentionConfig attention = AttentionConfig.selectAndMerge(16, 2, 1, 1, 1);
    List<int[]> documents = List.of(A, B, C, D);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      int[] x = documents.get(i % 4), y = documents.get((i + 1 + i / 4) % 4), z = documents.get((i + 3) % 4);
      requests.add(request(prompt(100 + i, x, y, z), i % 3 == 0 ? 4 : 0, attention));
    }
    int[][] expected = new int[requests.size()][];
    try (PrefixCache alone = cache()) {
      for (int i = 0; i < requests.size(); i++) {
        expected[i] = generate(alone, requests.get(i)).tokens();
      }
    }
    long page = pageBytes();
    ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
    try (PrefixCache cache = cache(new CacheOptions(true, PAGE, 4 * page, 4 * page, 16 * page, dir.resolve("pages")))) {
      CountDownLatch start = new CountDownLatch(1);
      Thread[] workers = new Thread[THREADS];
      for (int w = 0; w < THREADS; w++) {
        int id = w;
        workers[w] = Thread.ofPlatform().start(() -> {
          try {
            start.await();
            for (int r = 0; r < ROUNDS; r++) {
              int i = (id * 5 + r * 7) % requests.size();
              int[] got = generate(cache, requests.get(i)).tokens();
              if (!Arrays.equals(expected[i], got)) {
                problems.add("thread " + id + " request " + i + ": " + Arrays.toString(got));
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
      assertEquals(List.of(), List.copyOf(problems));
      CacheStats s = cache.stats();
      assertEquals(0, s.pagesInUse(), "every pin was released");
      assertEquals(0, s.bytesInUse());
      assertTrue(s.documentHits() > 0 && s.fast().evictions() > 0 && s.host().evictions() > 0, s.toString());
      assertEquals(0, s.corruptPages());
    }
  }

  private static long pageBytes() {
    try (Sequence s = MODEL.newSequence(PAGE, PAGE)) {
      return ((PagedKvCache) s.cache()).pageHostBytes();
    }
  }
}
