package dev.selma.engine.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.generate.GenerationResult;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * 16 threads generating over prompts that share documents in different orders, through a cache whose
 * tiers are all smaller than the working set, so pages are pinned, shared, evicted, moved and restored
 * all the time.
 */
class PrefixCacheConcurrencyTest {
  private static final int THREADS = 16, ROUNDS = 12;

  @TempDir Path dir;

  @Test
  void sixteenThreadsOverOverlappingPrefixesMatchSingleThreadedRuns() throws Exception {
    PrefixCacheTest.compileKernels();
    AttentionConfig attention = AttentionConfig.dense();
    List<int[]> prompts = PrefixCacheTest.overlapping(18);
    int[][] expected = prompts.stream().map(p -> PrefixCacheTest.greedy(null, p, attention).tokens())
        .toArray(int[][]::new);
    long page = PrefixCacheTest.PAGE_BYTES;
    CacheOptions options = PrefixCacheTest.options(6 * page, 6 * page, 12 * page, dir.resolve("pages"));
    ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
    try (PrefixCache cache = PrefixCacheTest.cache(options)) {
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
              GenerationResult g = PrefixCacheTest.greedy(cache, prompts.get(i), attention);
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
        assertArrayEquals(expected[i], PrefixCacheTest.greedy(cache, prompts.get(i), attention).tokens());
      }
    }
  }
}
