package dev.selma.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.selma.engine.kv.Fp8;
import dev.selma.engine.kv.KvPage;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.model.ModelConfig;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** Tokens appended from another cache (document reuse), and pages shared before they are full. */
class CpuKvCacheTest {
  static final int PAGE = 16;
  static final ModelConfig CONFIG = RandomModel.config(64, 32, 2, 4, 2, false);
  static final CpuBackend BACKEND = new CpuBackend(1, PAGE);

  @AfterAll
  static void close() {
    BACKEND.close();
  }

  /** Random queries, keys and values of {@code n} tokens, per layer. */
  record Chunk(CpuActivations[] q, CpuActivations[] k, CpuActivations[] v) {}

  static Chunk chunk(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int layers = CONFIG.numLayers();
    CpuActivations[] q = new CpuActivations[layers], k = new CpuActivations[layers], v = new CpuActivations[layers];
    for (int l = 0; l < layers; l++) {
      q[l] = new CpuActivations(n, CONFIG.qDim());
      k[l] = new CpuActivations(n, CONFIG.kvDim());
      v[l] = new CpuActivations(n, CONFIG.kvDim());
      for (CpuActivations a : new CpuActivations[] {q[l], k[l], v[l]}) {
        for (int i = 0; i < a.data().length; i++) {
          a.data()[i] = (float) r.nextGaussian();
        }
      }
    }
    return new Chunk(q, k, v);
  }

  static CpuKvCache cache() {
    return (CpuKvCache) BACKEND.newKvCache(CONFIG, 256);
  }

  /** Stores tokens {@code [from, to)} of {@code c} as the forward pass does. */
  static void store(CpuKvCache cache, Chunk c, int from, int to) {
    for (int l = 0; l < CONFIG.numLayers(); l++) {
      BACKEND.storeKv(cache, l, c.q()[l].rows(from, to), c.k()[l].rows(from, to), c.v()[l].rows(from, to));
    }
    cache.advance(to - from);
  }

  static float[] row(CpuKvCache cache, boolean values, int layer, int token) {
    float[] page = values ? cache.values(cache.page(token), layer) : cache.keys(cache.page(token), layer);
    float[] out = new float[CONFIG.kvDim()];
    for (int h = 0; h < CONFIG.numKvHeads(); h++) {
      System.arraycopy(page, cache.slot(h, token), out, h * CONFIG.headDim(), CONFIG.headDim());
    }
    return out;
  }

  static void assertSameRows(CpuKvCache expected, CpuKvCache actual) {
    assertEquals(expected.length(), actual.length());
    for (int l = 0; l < CONFIG.numLayers(); l++) {
      for (int t = 0; t < expected.length(); t++) {
        assertArrayEquals(row(expected, false, l, t), row(actual, false, l, t), "keys, layer " + l + " token " + t);
        assertArrayEquals(row(expected, true, l, t), row(actual, true, l, t), "values, layer " + l + " token " + t);
      }
    }
  }

  @Test
  void appendedKeysEnterTheBlockMeansAndBoundsAsStoredKeysDo() {
    Chunk head = chunk(7, 2), source = chunk(45, 1);
    CpuKvCache src = cache(), appended = cache(), stored = cache();
    store(src, source, 0, 45);
    store(appended, head, 0, 7);
    appended.append(src, 10, 45);
    store(stored, head, 0, 7);
    store(stored, source, 10, 45);
    assertSameRows(stored, appended);
    int row = CONFIG.kvDim();
    for (int l = 0; l < CONFIG.numLayers(); l++) {
      for (int block : new int[] {16, 32}) {
        CpuKvCache.BlockMeans e = stored.means(l, block, 42), a = appended.means(l, block, 42);
        int n = 42 / block * row;
        assertArrayEquals(Arrays.copyOf(e.keys, n), Arrays.copyOf(a.keys, n), "key means");
        assertArrayEquals(Arrays.copyOf(e.keyMin, n), Arrays.copyOf(a.keyMin, n), "key minima");
        assertArrayEquals(Arrays.copyOf(e.keyMax, n), Arrays.copyOf(a.keyMax, n), "key maxima");
      }
    }
  }

  @Test
  void appendingWholeGranulesKeepsTheirQuerySums() {
    Chunk head = chunk(16, 2), source = chunk(48, 1);
    CpuKvCache src = cache(), appended = cache(), stored = cache();
    store(src, source, 0, 48);
    store(appended, head, 0, 16);
    appended.append(src, 16, 48);
    store(stored, head, 0, 16);
    store(stored, source, 16, 48);
    for (int l = 0; l < CONFIG.numLayers(); l++) {
      float[] e = stored.means(l, 16, 48).queries, a = appended.means(l, 16, 48).queries;
      for (int i = 0; i < 3 * CONFIG.kvDim(); i++) {
        assertEquals(e[i], a[i], 1e-6f * (1 + Math.abs(e[i])), "query mean " + i + " of layer " + l);
      }
    }
  }

  @Test
  void aPageSharedBeforeItIsFullIsNeverWrittenAgainAndAttachesWithItsTokens() {
    Chunk c = chunk(30, 3);
    CpuKvCache cache = cache();
    store(cache, c, 0, 20);
    KvPage partial = cache.share(1);
    float[] sharedKeys = ((CpuKvCache.Page) partial).keys[0].clone();
    store(cache, c, 20, 30);
    assertArrayEquals(sharedKeys, ((CpuKvCache.Page) partial).keys[0], "the writes went to a copy");
    CpuKvCache whole = cache();
    store(whole, c, 0, 30);
    assertSameRows(whole, cache);

    CpuKvCache other = cache();
    store(other, c, 0, 16);
    other.attach(partial, 4);
    assertEquals(20, other.length());
    CpuKvCache first20 = cache();
    store(first20, c, 0, 20);
    assertSameRows(first20, other);
    assertThrows(IllegalStateException.class, () -> other.attach(partial, 4), "not at a page boundary");
    assertThrows(IllegalArgumentException.class, () -> cache().attach(partial, PAGE + 1));
    assertThrows(IllegalArgumentException.class, () -> cache.share(2), "page 2 holds no tokens");
  }

  /**
   * Under fp8 the stored rows are the GPU's fp8 values (each an e4m3 number times its row's scale);
   * the block sums keep the keys as they came, as the GPU's kv_store does; appended rows are copied as
   * they are.
   */
  @Test
  void fp8PagesHoldRoundedRowsAndTheSumsOfTheKeysAsTheyCame() {
    try (CpuBackend fp8 = new CpuBackend(1, PAGE, KvPrecision.FP8)) {
      CpuKvCache rounded = (CpuKvCache) fp8.newKvCache(CONFIG, 256), plain = cache();
      CpuKvCache appended = (CpuKvCache) fp8.newKvCache(CONFIG, 256);
      Chunk c = chunk(40, 9);
      for (int l = 0; l < CONFIG.numLayers(); l++) {
        fp8.storeKv(rounded, l, c.q()[l], c.k()[l], c.v()[l]);
      }
      rounded.advance(40);
      store(plain, c, 0, 40);
      appended.append(rounded, 0, 40);
      assertSameRows(rounded, appended);
      int d = CONFIG.headDim();
      for (int l = 0; l < CONFIG.numLayers(); l++) {
        for (int t = 0; t < 40; t++) {
          for (boolean values : new boolean[] {false, true}) {
            float[] exact = row(plain, values, l, t), got = row(rounded, values, l, t);
            assertFalse(Arrays.equals(exact, got), "rounded");
            for (int h = 0; h < CONFIG.numKvHeads(); h++) {
              float[] expected = Arrays.copyOfRange(exact, h * d, (h + 1) * d);
              Fp8.roundRow(expected, 0, d);
              assertArrayEquals(expected, Arrays.copyOfRange(got, h * d, (h + 1) * d));
            }
          }
        }
        assertArrayEquals(plain.means(l, 16, 40).keys, rounded.means(l, 16, 40).keys, "block means of the keys");
      }
    }
  }
}
