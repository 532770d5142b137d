package dev.selma.engine.backend.cpu;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.model.ModelConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Keys (before RoPE) and values of one sequence in fp32 pages of {@link #PAGE} tokens. A page holds
 * every layer; within a layer, each KV head's rows are contiguous ({@code [head][slot][dim]}), so
 * attention over one head walks memory in order.
 *
 * <p>Beside each page, per layer and KV head, the sums of the keys and of the queries (the mean of
 * the KV head's query heads) over every {@link #GRANULE} tokens: select-and-merge scores blocks by
 * these means. Queries are not stored, so their sums are what survives of them; keeping them per
 * granule lets a request choose any block size, and lets {@link #truncate} cut at a granule.
 */
final class CpuKvCache implements KvCache {
  static final int PAGE = 256;
  static final int GRANULE = AttentionConfig.MIN_BLOCK_SIZE;
  private static final int GRANULES_PER_PAGE = PAGE / GRANULE;

  final int layers, kvHeads, headDim;
  private final int capacity;
  /** keyPages.get(p)[layer] = keys of tokens [p·PAGE, (p+1)·PAGE) of that layer; the same for the rest. */
  private final List<float[][]> keyPages = new ArrayList<>(), valuePages = new ArrayList<>();
  /** [layer][granule in page][head][dim]. */
  private final List<float[][]> keySumPages = new ArrayList<>(), querySumPages = new ArrayList<>();
  /** Block means of each layer at the block size last asked for, extended as blocks complete. */
  private final BlockMeans[] means;
  private int length;

  CpuKvCache(ModelConfig config, int capacity) {
    if (capacity <= 0) {
      throw new IllegalArgumentException("KV cache capacity must be > 0, got " + capacity);
    }
    this.layers = config.numLayers();
    this.kvHeads = config.numKvHeads();
    this.headDim = config.headDim();
    this.capacity = capacity;
    this.means = new BlockMeans[layers];
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
    if (tokens < 0 || length + tokens > pages() * PAGE) {
      throw new IllegalStateException("advance by " + tokens + " beyond stored tokens");
    }
    length += tokens;
  }

  @Override
  public int truncate(int newLength) {
    if (newLength < 0 || newLength > length) {
      throw new IllegalArgumentException("truncate to " + newLength + " of " + length + " tokens");
    }
    length = newLength - newLength % GRANULE;
    int keep = (length + PAGE - 1) / PAGE;
    while (keyPages.size() > keep) {
      keyPages.removeLast();
      valuePages.removeLast();
      keySumPages.removeLast();
      querySumPages.removeLast();
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
    long perPage = 2L * layers * kvHeads * PAGE * headDim + 2L * layers * GRANULES_PER_PAGE * kvHeads * headDim;
    long meanFloats = 0;
    for (BlockMeans m : means) {
      meanFloats += m == null ? 0 : m.keys.length + m.queries.length;
    }
    return (perPage * pages() + meanFloats) * Float.BYTES;
  }

  @Override
  public void close() {
    keyPages.clear();
    valuePages.clear();
    keySumPages.clear();
    querySumPages.clear();
    Arrays.fill(means, null);
    length = 0;
  }

  int pages() {
    return keyPages.size();
  }

  /** Makes room for tokens up to {@code endToken} (exclusive), checking the capacity. */
  void reserve(int endToken) {
    if (endToken > capacity) {
      throw new IllegalStateException(
          "the sequence needs " + endToken + " tokens but the KV cache holds at most " + capacity);
    }
    while (pages() * PAGE < endToken) {
      keyPages.add(new float[layers][kvHeads * PAGE * headDim]);
      valuePages.add(new float[layers][kvHeads * PAGE * headDim]);
      keySumPages.add(new float[layers][GRANULES_PER_PAGE * kvHeads * headDim]);
      querySumPages.add(new float[layers][GRANULES_PER_PAGE * kvHeads * headDim]);
    }
  }

  float[] keys(int page, int layer) {
    return keyPages.get(page)[layer];
  }

  float[] values(int page, int layer) {
    return valuePages.get(page)[layer];
  }

  /** Offset of (head, token's slot) in a page array. */
  int slot(int head, int token) {
    return (head * PAGE + token % PAGE) * headDim;
  }

  /**
   * Adds token {@code token}'s key of KV head {@code head} and its query (already averaged over the
   * head's query heads) to their granule sums; the first token of a granule starts the sums afresh,
   * which also discards what a truncation left there.
   */
  void addToSums(int layer, int head, int token, float[] key, int keyOffset, float[] query, int queryOffset) {
    int page = token / PAGE, at = ((token % PAGE / GRANULE) * kvHeads + head) * headDim;
    float[] ks = keySumPages.get(page)[layer], qs = querySumPages.get(page)[layer];
    if (token % GRANULE == 0) {
      Arrays.fill(ks, at, at + headDim, 0f);
      Arrays.fill(qs, at, at + headDim, 0f);
    }
    VectorMath.axpy(1f, key, keyOffset, ks, at, headDim);
    VectorMath.axpy(1f, query, queryOffset, qs, at, headDim);
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
          int page = g / GRANULES_PER_PAGE, at = (g % GRANULES_PER_PAGE) * row;
          VectorMath.axpy(inv, keySumPages.get(page)[layer], at, m.keys, o, row);
          VectorMath.axpy(inv, querySumPages.get(page)[layer], at, m.queries, o, row);
        }
      }
      m.blocks = complete;
    }
    return m;
  }

  /** Means of keys and queries per complete block, {@code [block][head][dim]}. */
  static final class BlockMeans {
    final int blockSize;
    private final int row;
    float[] keys = new float[0], queries = new float[0];
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
      }
    }

    /** Offset of (block, head) in {@link #keys} and {@link #queries}. */
    int at(int block, int head, int headDim) {
      return block * row + head * headDim;
    }
  }
}
