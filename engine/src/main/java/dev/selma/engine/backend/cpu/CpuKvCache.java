package dev.selma.engine.backend.cpu;

import dev.selma.engine.kv.KvCache;
import dev.selma.engine.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Keys (before RoPE) and values of one sequence in fp32 pages of {@link #PAGE} tokens. A page holds
 * every layer; within a layer, each KV head's rows are contiguous ({@code [head][slot][dim]}), so
 * attention over one head walks memory in order.
 */
final class CpuKvCache implements KvCache {
  static final int PAGE = 256;

  final int layers, kvHeads, headDim;
  private final int capacity;
  /** pages.get(p)[layer] = keys of tokens [p·PAGE, (p+1)·PAGE) of that layer. */
  private final List<float[][]> keyPages = new ArrayList<>(), valuePages = new ArrayList<>();
  private int length;

  CpuKvCache(ModelConfig config, int capacity) {
    if (capacity <= 0) {
      throw new IllegalArgumentException("KV cache capacity must be > 0, got " + capacity);
    }
    this.layers = config.numLayers();
    this.kvHeads = config.numKvHeads();
    this.headDim = config.headDim();
    this.capacity = capacity;
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
  public void truncate(int newLength) {
    if (newLength < 0 || newLength > length) {
      throw new IllegalArgumentException("truncate to " + newLength + " of " + length + " tokens");
    }
    length = newLength;
    int keep = (newLength + PAGE - 1) / PAGE;
    while (keyPages.size() > keep) {
      keyPages.removeLast();
      valuePages.removeLast();
    }
  }

  @Override
  public long bytes() {
    return 2L * pages() * layers * kvHeads * PAGE * headDim * Float.BYTES;
  }

  @Override
  public void close() {
    keyPages.clear();
    valuePages.clear();
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
}
