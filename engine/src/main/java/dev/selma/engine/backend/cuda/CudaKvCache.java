package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.ModelConfig;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The keys (before RoPE) and values of one sequence in device pages of {@link #PAGE} tokens, with a
 * device page table the kernels index. A page holds every layer (layout in {@code kv_layout.cuh}):
 * keys and values {@code [layer][kv head][slot][dim]} in fp32 or bf16, and the fp32 per-granule sums
 * of keys and queries that select-and-merge scores blocks with (as the CPU cache keeps them).
 *
 * <p>Pages are taken from the device pool as tokens arrive and given back on truncation and close.
 * Creating a cache checks that its full capacity could fit in the GPU's free memory, so that a context
 * the GPU cannot hold fails at once with the numbers, not half-way through a long prompt.
 */
final class CudaKvCache implements KvCache {
  static final int PAGE = 256;
  static final int GRANULE = AttentionConfig.MIN_BLOCK_SIZE;

  final int layers, kvHeads, headDim;
  final GgmlType type;
  final boolean interleavedRope;
  final long valueOffset, keySumOffset, querySumOffset, pageBytes;
  private final int capacity;
  private final DeviceMemory memory;
  private final Staging staging;
  private final DeviceBuffer pageTable;
  private final List<DeviceBuffer> pages = new ArrayList<>();
  private int length;
  private boolean closed;

  CudaKvCache(ModelConfig config, int capacity, GgmlType type, CudaDevice device, DeviceMemory memory,
      Staging staging) {
    if (capacity <= 0) {
      throw new IllegalArgumentException("KV cache capacity must be > 0, got " + capacity);
    }
    this.layers = config.numLayers();
    this.kvHeads = config.numKvHeads();
    this.headDim = config.headDim();
    this.type = type;
    this.interleavedRope = config.ropeStyle() == ModelConfig.RopeStyle.INTERLEAVED;
    this.capacity = capacity;
    this.memory = memory;
    this.staging = staging;
    long elementBytes = type == GgmlType.BF16 ? 2 : 4;
    long kv = (long) layers * kvHeads * PAGE * headDim * elementBytes;
    long sums = (long) layers * (PAGE / GRANULE) * kvHeads * headDim * 4;
    valueOffset = kv;
    keySumOffset = 2 * kv;
    querySumOffset = 2 * kv + sums;
    pageBytes = 2 * kv + 2 * sums;
    long pageCount = (capacity + (long) PAGE - 1) / PAGE;
    long needed = pageCount * pageBytes;
    long[] info = device.memoryInfo();
    if (needed > info[0] + memory.idleBytes()) {
      throw new GpuOutOfMemoryException("a KV cache of " + capacity + " tokens (" + type + ")", needed,
          info[0] + memory.idleBytes(), info[1], memory.liveBytes());
    }
    pageTable = memory.allocate(8 * pageCount, "the KV page table");
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
    if (tokens < 0 || length + tokens > pages.size() * PAGE) {
      throw new IllegalStateException("advance by " + tokens + " beyond stored tokens");
    }
    length += tokens;
  }

  @Override
  public int truncate(int newLength) {
    if (newLength < 0 || newLength > length) {
      throw new IllegalArgumentException("truncate to " + newLength + " of " + length + " tokens");
    }
    // Query sums are all that is left of the queries, so the cut is at a granule (as on the CPU).
    length = newLength - newLength % GRANULE;
    int keep = (length + PAGE - 1) / PAGE;
    while (pages.size() > keep) {
      memory.release(pages.removeLast());
    }
    return length;
  }

  @Override
  public long bytes() {
    return pages.size() * pageBytes + pageTable.bytes();
  }

  /** Makes room for tokens up to {@code endToken} (exclusive), checking the capacity. */
  void reserve(int endToken) {
    if (closed) {
      throw new IllegalStateException("the KV cache is closed");
    }
    if (endToken > capacity) {
      throw new IllegalStateException(
          "the sequence needs " + endToken + " tokens but the KV cache holds at most " + capacity);
    }
    int first = pages.size();
    while (pages.size() * PAGE < endToken) {
      pages.add(memory.allocate(pageBytes, "a KV page of " + PAGE + " tokens"));
    }
    if (pages.size() > first) {
      long[] addresses = new long[pages.size() - first];
      for (int i = 0; i < addresses.length; i++) {
        addresses[i] = pages.get(first + i).address();
      }
      staging.upload(MemorySegment.ofArray(addresses), pageTable, 8L * first);
    }
  }

  /** Device address of the page table, {@code long[pages]}. */
  long pageTable() {
    return pageTable.address();
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (DeviceBuffer p : pages) {
      memory.release(p);
    }
    pages.clear();
    memory.release(pageTable);
    length = 0;
  }
}
