package dev.selma.engine.backend.cpu;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.kv.Fp8;
import dev.selma.engine.kv.KvCacheChecks;
import dev.selma.engine.kv.KvPage;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.kv.PagedKvCache;
import dev.selma.engine.model.ModelConfig;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Keys (before RoPE) and values of one sequence in fp32 pages of {@link #pageTokens} tokens (rounded to
 * fp8 e4m3 values as they are stored, under {@link KvPrecision#FP8}: the reference of the GPU's fp8
 * pages, not a memory saving). A page
 * holds every layer; within a layer, each KV head's rows are contiguous ({@code [head][slot][dim]}),
 * so attention over one head walks memory in order.
 *
 * <p>Beside each page, per layer and KV head, the sums of the keys and of the queries (the mean of
 * the KV head's query heads) over every {@link #GRANULE} tokens: select-and-merge scores blocks by
 * these means. Queries are not stored, so their sums are what survives of them; keeping them per
 * granule lets a request choose any block size, and lets {@link #truncate} cut at a granule. The sums
 * are part of a page's content, so a shared page carries them.
 *
 * <p>Full pages can be shared with other sequences ({@link PagedKvCache}); a shared page is never
 * written again, and a truncation that cuts into one copies it first.
 */
final class CpuKvCache implements PagedKvCache {
  static final int GRANULE = AttentionConfig.MIN_BLOCK_SIZE;
  /** Host layout: little-endian floats, so that page files read the same on any machine. */
  private static final ValueLayout.OfFloat HOST_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  final int layers, kvHeads, headDim, pageTokens;
  private final boolean fp8;
  private final int granulesPerPage, pageFloats, sumFloats;
  private final String format;
  private final int capacity;
  private final List<Page> pages = new ArrayList<>();
  /** Block means of each layer at the block size last asked for, extended as blocks complete. */
  private final BlockMeans[] means;
  private int length;

  CpuKvCache(ModelConfig config, int capacity, int pageTokens, KvPrecision precision) {
    if (capacity <= 0) {
      throw new IllegalArgumentException("KV cache capacity must be > 0, got " + capacity);
    }
    if (pageTokens < GRANULE || Integer.bitCount(pageTokens) != 1) {
      throw new IllegalArgumentException("KV page must be a power of two >= " + GRANULE + " tokens, got " + pageTokens);
    }
    this.layers = config.numLayers();
    this.kvHeads = config.numKvHeads();
    this.headDim = config.headDim();
    this.pageTokens = pageTokens;
    this.granulesPerPage = pageTokens / GRANULE;
    this.pageFloats = kvHeads * pageTokens * headDim;
    this.sumFloats = granulesPerPage * kvHeads * headDim;
    this.capacity = capacity;
    this.means = new BlockMeans[layers];
    this.fp8 = precision == KvPrecision.FP8;
    this.format = (fp8 ? "cpu-f32-fp8-rounded" : "cpu-f32") + " layers=" + layers + " kv_heads=" + kvHeads + " head_dim=" + headDim + " page=" + pageTokens
        + " granule=" + GRANULE + " layout=[layer][keys,values,key_sums,query_sums]";
  }

  /**
   * One page: {@code keys[layer]} holds the keys of its tokens in that layer, {@code [head][slot][dim]};
   * the same for values; {@code keySums[layer]} and {@code querySums[layer]} are {@code
   * [granule][head][dim]}.
   */
  static final class Page implements KvPage {
    final float[][] keys, values, keySums, querySums;
    private final String format;
    /**
     * Set before the page is handed to others (under the prefix cache's lock, which publishes it);
     * from then on nobody writes the page.
     */
    boolean shared;

    private Page(float[][] keys, float[][] values, float[][] keySums, float[][] querySums, String format) {
      this.keys = keys;
      this.values = values;
      this.keySums = keySums;
      this.querySums = querySums;
      this.format = format;
    }

    private static Page empty(int layers, int pageFloats, int sumFloats, String format) {
      return new Page(new float[layers][pageFloats], new float[layers][pageFloats], new float[layers][sumFloats],
          new float[layers][sumFloats], format);
    }

    private Page copy() {
      return new Page(deepCopy(keys), deepCopy(values), deepCopy(keySums), deepCopy(querySums), format);
    }

    private static float[][] deepCopy(float[][] a) {
      float[][] c = new float[a.length][];
      for (int i = 0; i < a.length; i++) {
        c[i] = a[i].clone();
      }
      return c;
    }

    @Override
    public long bytes() {
      return (long) keys.length * (2L * keys[0].length + 2L * keySums[0].length) * Float.BYTES;
    }

    @Override
    public String format() {
      return format;
    }

    @Override
    public long hostBytes() {
      return bytes();
    }

    /** Host layout: per layer, its keys, values, key sums and query sums, each as laid out here. */
    @Override
    public void download(MemorySegment dst) {
      long at = 0;
      for (int l = 0; l < keys.length; l++) {
        for (float[] a : new float[][] {keys[l], values[l], keySums[l], querySums[l]}) {
          MemorySegment.copy(a, 0, dst, HOST_FLOAT, at, a.length);
          at += (long) a.length * Float.BYTES;
        }
      }
    }

    private void upload(MemorySegment src) {
      long at = 0;
      for (int l = 0; l < keys.length; l++) {
        for (float[] a : new float[][] {keys[l], values[l], keySums[l], querySums[l]}) {
          MemorySegment.copy(src, HOST_FLOAT, at, a, 0, a.length);
          at += (long) a.length * Float.BYTES;
        }
      }
    }

    /** Heap pages are reclaimed by the garbage collector once nothing refers to them. */
    @Override
    public void free() {}
  }

  @Override
  public int length() {
    return length;
  }

  @Override
  public int capacity() {
    return capacity;
  }

  @Override
  public void advance(int tokens) {
    KvCacheChecks.advance(this, tokens, (long) pages() * pageTokens);
    length += tokens;
  }

  @Override
  public int truncate(int newLength) {
    KvCacheChecks.truncate(this, newLength);
    length = newLength - newLength % GRANULE;
    int keep = (length + pageTokens - 1) / pageTokens;
    while (pages.size() > keep) {
      pages.removeLast();
    }
    if (length % pageTokens != 0 && pages.getLast().shared) {
      pages.set(keep - 1, pages.getLast().copy()); // the tokens after the cut will be written
    }
    for (BlockMeans m : means) {
      if (m != null) {
        m.blocks = Math.min(m.blocks, length / m.blockSize);
      }
    }
    return length;
  }

  @Override
  public long bytes() {
    long meanFloats = 0;
    for (BlockMeans m : means) {
      meanFloats += m == null ? 0 : m.keys.length + m.queries.length + m.keyMin.length + m.keyMax.length;
    }
    return pageHostBytes() * pages() + meanFloats * Float.BYTES;
  }

  @Override
  public void close() {
    pages.clear();
    Arrays.fill(means, null);
    length = 0;
  }

  @Override
  public int pageTokens() {
    return pageTokens;
  }

  @Override
  public String pageFormat() {
    return format;
  }

  @Override
  public long pageHostBytes() {
    return (long) layers * (2L * pageFloats + 2L * sumFloats) * Float.BYTES;
  }

  @Override
  public KvPage share(int index) {
    KvCacheChecks.share(this, index);
    Page page = pages.get(index);
    page.shared = true;
    return page;
  }

  @Override
  public void attach(KvPage kvPage, int tokens) {
    Page page = kvPage instanceof Page p ? p : null;
    KvCacheChecks.attach(this, kvPage, page != null, page != null && page.shared, tokens, (long) pages() * pageTokens);
    pages.add(page);
    length += tokens;
  }

  @Override
  public KvPage upload(MemorySegment hostPage) {
    if (hostPage.byteSize() != pageHostBytes()) {
      throw new IllegalArgumentException("host page of " + hostPage.byteSize() + " bytes, expected " + pageHostBytes());
    }
    Page page = Page.empty(layers, pageFloats, sumFloats, format);
    page.upload(hostPage);
    page.shared = true; // made for the prefix cache, to be attached by any number of sequences
    return page;
  }

  @Override
  public void append(PagedKvCache source, int from, int to) {
    if (!(source instanceof CpuKvCache src) || !src.format.equals(format)) {
      throw new IllegalArgumentException("cache of another format: " + source.pageFormat() + ", expected " + format);
    }
    if (src == this) {
      throw new IllegalArgumentException("a cache cannot append its own tokens");
    }
    if (from < 0 || from > to || to > src.length) {
      throw new IllegalArgumentException("tokens [" + from + ", " + to + ") of a cache of " + src.length);
    }
    int start = length;
    reserve(start + to - from);
    float[] query = new float[headDim];
    for (int l = 0; l < layers; l++) {
      for (int s = from; s < to; s++) {
        Page page = src.pages.get(src.page(s));
        // The granule's query sum covers its tokens that the source holds.
        float inv = 1f / Math.min(GRANULE, src.length - s / GRANULE * GRANULE);
        for (int h = 0; h < kvHeads; h++) {
          int sums = src.sumOffset(h, s);
          for (int c = 0; c < headDim; c++) {
            query[c] = page.querySums[l][sums + c] * inv;
          }
          store(l, h, start + s - from, page.keys[l], src.slot(h, s), page.values[l], src.slot(h, s), query, false);
        }
      }
    }
    length += to - from;
  }

  int pages() {
    return pages.size();
  }

  /** The page holding token {@code token}. */
  int page(int token) {
    return token / pageTokens;
  }

  /** Makes room for tokens up to {@code endToken} (exclusive), checking the capacity. */
  void reserve(int endToken) {
    if (endToken > capacity) {
      throw new IllegalStateException(
          "the sequence needs " + endToken + " tokens but the KV cache holds at most " + capacity);
    }
    if (length % pageTokens != 0 && endToken > length && pages.get(page(length)).shared) {
      pages.set(page(length), pages.get(page(length)).copy()); // shared before it was full: write a copy
    }
    while (pages() * pageTokens < endToken) {
      pages.add(Page.empty(layers, pageFloats, sumFloats, format));
    }
  }

  float[] keys(int page, int layer) {
    return pages.get(page).keys[layer];
  }

  float[] values(int page, int layer) {
    return pages.get(page).values[layer];
  }

  /** Offset of (head, token's slot) in a page array. */
  int slot(int head, int token) {
    return (head * pageTokens + token % pageTokens) * headDim;
  }

  /** Offset of (head, token's granule) in a page's sum arrays. */
  private int sumOffset(int head, int token) {
    return ((token % pageTokens / GRANULE) * kvHeads + head) * headDim;
  }

  /**
   * Stores token {@code token}'s key and value of KV head {@code head} (reserved) and adds the key
   * and the query (already averaged over the head's query heads) to their granule sums; the first
   * token of a granule starts the sums afresh, which also discards what a truncation left there. New
   * rows ({@code fresh}) of an fp8 cache are rounded; rows from another cache were already (and the sums
   * take the key as given, rounded or not, as the GPU's kv_store and kv_append do).
   */
  void store(int layer, int head, int token, float[] key, int keyOffset, float[] value, int valueOffset,
      float[] query, boolean fresh) {
    Page page = pages.get(page(token));
    int slot = slot(head, token);
    System.arraycopy(key, keyOffset, page.keys[layer], slot, headDim);
    System.arraycopy(value, valueOffset, page.values[layer], slot, headDim);
    if (fp8 && fresh) {
      Fp8.roundRow(page.keys[layer], slot, headDim);
      Fp8.roundRow(page.values[layer], slot, headDim);
    }
    int at = sumOffset(head, token);
    float[] ks = page.keySums[layer], qs = page.querySums[layer];
    if (token % GRANULE == 0) {
      Arrays.fill(ks, at, at + headDim, 0f);
      Arrays.fill(qs, at, at + headDim, 0f);
    }
    VectorMath.axpy(1f, key, keyOffset, ks, at, headDim);
    VectorMath.axpy(1f, query, 0, qs, at, headDim);
  }

  /**
   * The means of the complete blocks of {@code blockSize} tokens among the first {@code stored}
   * tokens of a layer (whose sums are in place).
   */
  BlockMeans means(int layer, int blockSize, int stored) {
    BlockMeans m = means[layer];
    if (m == null || m.blockSize != blockSize) {
      m = means[layer] = new BlockMeans(blockSize, kvHeads * headDim);
    }
    int complete = stored / blockSize;
    if (complete > m.blocks) {
      m.ensure(complete);
      int row = kvHeads * headDim, perBlock = blockSize / GRANULE;
      float inv = 1f / blockSize;
      for (int b = m.blocks; b < complete; b++) {
        int o = b * row;
        Arrays.fill(m.keys, o, o + row, 0f);
        Arrays.fill(m.queries, o, o + row, 0f);
        for (int g = b * perBlock; g < (b + 1) * perBlock; g++) {
          Page page = pages.get(g / granulesPerPage);
          int at = (g % granulesPerPage) * row;
          VectorMath.axpy(inv, page.keySums[layer], at, m.keys, o, row);
          VectorMath.axpy(inv, page.querySums[layer], at, m.queries, o, row);
        }
        // Element-wise bounds of the block's keys, from the keys themselves (a page holds them).
        Arrays.fill(m.keyMin, o, o + row, Float.POSITIVE_INFINITY);
        Arrays.fill(m.keyMax, o, o + row, Float.NEGATIVE_INFINITY);
        for (int t = b * blockSize; t < (b + 1) * blockSize; t++) {
          float[] keys = keys(page(t), layer);
          for (int h = 0; h < kvHeads; h++) {
            int from = slot(h, t), to = o + h * headDim;
            for (int c = 0; c < headDim; c++) {
              m.keyMin[to + c] = Math.min(m.keyMin[to + c], keys[from + c]);
              m.keyMax[to + c] = Math.max(m.keyMax[to + c], keys[from + c]);
            }
          }
        }
      }
      m.blocks = complete;
    }
    return m;
  }

  /**
   * Means of keys and queries, and element-wise minimum and maximum of keys, per complete block,
   * {@code [block][head][dim]}.
   */
  static final class BlockMeans {
    final int blockSize;
    private final int row;
    float[] keys = new float[0], queries = new float[0], keyMin = new float[0], keyMax = new float[0];
    int blocks;

    BlockMeans(int blockSize, int row) {
      this.blockSize = blockSize;
      this.row = row;
    }

    void ensure(int n) {
      if (n * row > keys.length) {
        int cap = Math.max(n * row, keys.length * 2);
        keys = Arrays.copyOf(keys, cap);
        queries = Arrays.copyOf(queries, cap);
        keyMin = Arrays.copyOf(keyMin, cap);
        keyMax = Arrays.copyOf(keyMax, cap);
      }
    }

    /** Offset of (block, head) in {@link #keys} and {@link #queries}. */
    int at(int block, int head, int headDim) {
      return block * row + head * headDim;
    }
  }
}
