package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.kv.KvCacheChecks;
import dev.selma.engine.kv.KvPage;
import dev.selma.engine.kv.PagedKvCache;
import dev.selma.engine.model.ModelConfig;
import java.lang.foreign.MemorySegment;
import jcuda.Pointer;
import java.util.ArrayList;
import java.util.List;

/**
 * The keys (before RoPE) and values of one sequence in device pages of {@link #PAGE} tokens, with a
 * device page table the kernels index. A page holds every layer (layout in {@code kv_layout.cuh}):
 * keys and values {@code [layer][kv head][slot][dim]} in fp32, bf16 or fp8 (e4m3, with an fp32 scale per
 * row), and the fp32 per-granule sums of keys and queries that select-and-merge scores blocks with (as
 * the CPU cache keeps them).
 *
 * <p>Pages are taken from the device pool as tokens arrive and given back on truncation and close.
 * Creating a cache checks that its full capacity could fit in the GPU's free memory, so that a context
 * the GPU cannot hold fails at once with the numbers, not half-way through a long prompt. Pages the
 * prefix cache holds on the GPU count as free there: a request attaches them instead of computing
 * them, or the prefix cache can move them to host memory, so a second question about a million cached
 * tokens is not refused because the first one's pages fill the GPU.
 *
 * <p>Pages are shared through the prefix cache as they are on the CPU: a shared page is read-only
 * (the next write into it goes to a copy), and a page the prefix cache adopted is its to free; this
 * cache frees only the pages it still owns. Operations that do not come through the backend (sharing,
 * attaching, truncating, closing) take the backend's lock, as its own operations do.
 */
final class CudaKvCache implements PagedKvCache {
  private static final System.Logger LOG = System.getLogger(CudaKvCache.class.getName());
  private static final java.util.concurrent.atomic.AtomicBoolean PINNED_WARNED =
      new java.util.concurrent.atomic.AtomicBoolean();
  static final int PAGE = 256;
  static final int GRANULE = AttentionConfig.MIN_BLOCK_SIZE;

  final int layers, kvHeads, headDim;
  final Element element;
  final boolean interleavedRope;
  final long valueOffset, keySumOffset, querySumOffset, pageBytes;
  private final int capacity;
  private final String format;
  private final CudaBackend backend;
  private final CudaDevice device;
  private final DeviceMemory memory;
  private final Staging staging;
  private final DeviceBuffer pageTable;
  private final List<Page> pages = new ArrayList<>();
  private final Ranking[] rankings;
  private final BlockSummaries[] summaries;
  /** Changes whenever tokens already stored change (truncation, attached or appended pages). */
  private long version;
  private int length;
  private boolean closed;

  /** How a page stores keys and values; {@link #suffix} names the kernels for it. */
  enum Element {
    F32(4, "f32"),
    BF16(2, "bf16"),
    /** e4m3, each (token, kv head) row with its fp32 scale (kv_layout.cuh). */
    FP8(1, "fp8");

    final int bytes;
    final String suffix;

    Element(int bytes, String suffix) {
      this.bytes = bytes;
      this.suffix = suffix;
    }

    /** Bytes one token takes in every layer's keys and values, scales included. */
    long tokenBytes(int layers, int kvHeads, int headDim) {
      return 2L * layers * kvHeads * ((long) headDim * bytes + (this == FP8 ? 4 : 0));
    }
  }

  /**
   * Select-and-merge's top blocks for the query blocks {@code [firstQueryBlock, blocks)} of one layer,
   * as computed over the cache's complete blocks at {@code version}.
   */
  record Ranking(AttentionConfig config, int firstQueryBlock, int blocks, long version, int[] best) {
    boolean matches(AttentionConfig c, int first, int count, long v) {
      return config.equals(c) && firstQueryBlock == first && blocks == count && version == v;
    }
  }

  Ranking ranking(int layer) {
    return rankings[layer];
  }

  void ranking(int layer, Ranking r) {
    rankings[layer] = r;
  }

  long version() {
    return version;
  }

  /**
   * Drops every layer's block summaries and ranking: after a step whose work never ran (a failed
   * recording), they may describe blocks that were not summarised. They are rebuilt when next asked for.
   */
  void forgetSummaries() {
    for (int l = 0; l < layers; l++) {
      rankings[l] = null;
      if (summaries[l] != null) {
        if (summaries[l].buffer != null) {
          memory.release(summaries[l].buffer);
        }
        summaries[l] = null;
      }
    }
  }

  /**
   * What select-and-merge ranks one layer's complete key blocks of one size by: their means (MEAN) or
   * their element-wise minima and maxima (BOUND), {@code [block][kv head][dim]} floats, maxima {@link
   * #hiOffset} bytes after the minima. A complete block does not change until a truncation cuts into
   * it, so each chunk computes only the blocks completed since the last ({@link #blocks} are valid).
   * The buffer grows by doubling, so that a short sequence in a long cache holds little.
   */
  static final class BlockSummaries {
    final AttentionConfig.Selection selection;
    final int blockSize;
    DeviceBuffer buffer;
    int capacityBlocks, blocks;

    BlockSummaries(AttentionConfig.Selection selection, int blockSize) {
      this.selection = selection;
      this.blockSize = blockSize;
    }

    long hiOffset(int kvHeads, int headDim) {
      return 4L * capacityBlocks * kvHeads * headDim;
    }
  }

  /**
   * The block summaries of {@code layer} for a selection and block size, with room for {@code blocks}
   * blocks; means and bounds, or blocks of another size, are dropped for the other. Called with the backend's lock held.
   */
  BlockSummaries summaries(int layer, AttentionConfig.Selection selection, int blockSize, int blocks) {
    BlockSummaries s = summaries[layer];
    if (s == null || s.selection.bounds() != selection.bounds() || s.blockSize != blockSize) {
      if (s != null) {
        memory.release(s.buffer);
      }
      s = summaries[layer] = new BlockSummaries(selection, blockSize);
    }
    if (s.buffer == null || blocks > s.capacityBlocks) {
      int capacity = Math.max(Math.max(1, blocks), Math.min(2 * s.capacityBlocks, capacity() / blockSize));
      long rowBytes = 4L * kvHeads * headDim;
      int arrays = selection.bounds() ? 2 : 1;
      DeviceBuffer grown = memory.allocate(arrays * rowBytes * capacity, "select-and-merge block summaries");
      if (s.buffer != null) {
        for (int a = 0; a < arrays; a++) {
          device.copyWithinDevice(grown, a * rowBytes * capacity, s.buffer, a * rowBytes * s.capacityBlocks,
              rowBytes * s.blocks);
        }
        memory.release(s.buffer);
      }
      s.buffer = grown;
      s.capacityBlocks = capacity;
    }
    return s;
  }

  /** One page of device memory; {@link #shared} and {@link #adopted} only ever become true. */
  static final class Page implements KvPage {
    final DeviceBuffer buffer;
    private final CudaKvCache maker;
    /** Read-only from now on: another sequence or the prefix cache may hold it. */
    boolean shared;
    /** The prefix cache frees it. */
    volatile boolean adopted;

    Page(DeviceBuffer buffer, CudaKvCache maker) {
      this.buffer = buffer;
      this.maker = maker;
    }

    @Override
    public long bytes() {
      return maker.pageBytes;
    }

    @Override
    public String format() {
      return maker.format;
    }

    @Override
    public long hostBytes() {
      return maker.pageBytes;
    }

    /** Host layout: the device bytes as they are. */
    @Override
    public void download(MemorySegment dst) {
      if (dst.byteSize() < maker.pageBytes) {
        throw new IllegalArgumentException("a page needs " + maker.pageBytes + " bytes, got " + dst.byteSize());
      }
      maker.backend.locked(() -> {
        maker.staging.download(buffer, 0, dst.asSlice(0, maker.pageBytes));
        return null;
      });
    }

    @Override
    public void adopted() {
      if (!adopted) {
        adopted = true;
        maker.backend.cachedPageBytes(maker.pageBytes);
      }
    }

    /**
     * In pinned host memory (pooled by the backend), copied by DMA: the host tier's pages come back at
     * PCIe speed.
     */
    @Override
    public HostCopy toHost() {
      CudaDevice device = maker.device;
      Pointer pinned;
      try {
        pinned = maker.backend.takePinned(maker.pageBytes);
      } catch (CudaException e) {
        // The system is out of page-locked memory: plain memory still works, at a fraction of the speed.
        if (!PINNED_WARNED.getAndSet(true)) {
          LOG.log(System.Logger.Level.WARNING, "Selma KV cache: host-tier pages in plain memory (" + e.getMessage()
              + "); restoring them to the GPU will be slower");
        }
        return KvPage.super.toHost();
      }
      maker.backend.locked(() -> {
        device.copyToHost(pinned, buffer, 0, maker.pageBytes);
        device.synchronize();
        return null;
      });
      MemorySegment data = MemorySegment.ofBuffer(pinned.getByteBuffer(0, maker.pageBytes));
      return new HostCopy(data, () -> maker.backend.givePinned(pinned, maker.pageBytes));
    }

    @Override
    public void free() {
      maker.memory.release(buffer);
      if (adopted) {
        maker.backend.cachedPageBytes(-maker.pageBytes);
      }
    }
  }

  CudaKvCache(ModelConfig config, int capacity, Element element, CudaBackend backend, CudaDevice device,
      DeviceMemory memory, Staging staging) {
    if (capacity <= 0) {
      throw new IllegalArgumentException("KV cache capacity must be > 0, got " + capacity);
    }
    this.layers = config.numLayers();
    this.rankings = new Ranking[layers];
    this.summaries = new BlockSummaries[layers];
    this.kvHeads = config.numKvHeads();
    this.headDim = config.headDim();
    this.element = element;
    this.interleavedRope = config.ropeStyle() == ModelConfig.RopeStyle.INTERLEAVED;
    this.capacity = capacity;
    this.backend = backend;
    this.device = device;
    this.memory = memory;
    this.staging = staging;
    long kv = (long) layers * kvHeads * PAGE * headDim * element.bytes;
    long scales = element == Element.FP8 ? (long) layers * kvHeads * PAGE * 4 : 0;
    long sums = sumBytes(config);
    valueOffset = kv;
    keySumOffset = 2 * kv + 2 * scales;
    querySumOffset = keySumOffset + sums;
    pageBytes = querySumOffset + sums;
    format = "cuda-kv v1 " + element + " layers=" + layers + " kv_heads=" + kvHeads + " head_dim=" + headDim
        + " page=" + PAGE + " granule=" + GRANULE;
    long pageCount = (capacity + (long) PAGE - 1) / PAGE;
    long needed = pageCount * pageBytes;
    long[] info = device.memoryInfo();
    long available = info[0] + memory.idleBytes() + backend.cachedPageBytes();
    if (needed > available) {
      throw new GpuOutOfMemoryException("a KV cache of " + capacity + " tokens (" + element.suffix + ")", needed,
          available, info[1], memory.liveBytes(), whatFits(config, element, available));
    }
    pageTable = memory.allocate(8 * pageCount, "the KV page table");
  }

  /** Bytes of one page's key and query sums. */
  private static long sumBytes(ModelConfig c) {
    return (long) c.numLayers() * (PAGE / GRANULE) * c.numKvHeads() * c.headDim() * 4;
  }

  /** Bytes of one page of {@code element} pages. */
  static long pageBytes(ModelConfig c, Element element) {
    return PAGE * element.tokenBytes(c.numLayers(), c.numKvHeads(), c.headDim()) + 2 * sumBytes(c);
  }

  /** What would fit in {@code available} bytes, for the message of a KV cache that does not. */
  private static String whatFits(ModelConfig c, Element element, long available) {
    String fits = "; at most " + tokensThatFit(c, element, available) + " tokens fit in " + element.suffix + " pages";
    return element == Element.FP8 ? fits
        : fits + ", " + tokensThatFit(c, Element.FP8, available) + " in fp8 pages (KV precision fp8)";
  }

  private static long tokensThatFit(ModelConfig c, Element element, long available) {
    long pageTableBytes = 8;
    return available / (pageBytes(c, element) + pageTableBytes) * PAGE;
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
    KvCacheChecks.advance(this, tokens, (long) pages.size() * PAGE);
    length += tokens;
  }

  @Override
  public int truncate(int newLength) {
    KvCacheChecks.truncate(this, newLength);
    // Query sums are all that is left of the queries, so the cut is at a granule (as on the CPU). A
    // shared page the cut ends in is copied by the next write (reserve).
    length = newLength - newLength % GRANULE;
    version++;
    for (BlockSummaries s : summaries) {
      if (s != null) {
        s.blocks = Math.min(s.blocks, length / s.blockSize);
      }
    }
    int keep = (length + PAGE - 1) / PAGE;
    while (pages.size() > keep) {
      drop(pages.removeLast());
    }
    return length;
  }

  private void drop(Page page) {
    if (!page.adopted) {
      memory.release(page.buffer);
    }
  }

  @Override
  public long bytes() {
    long summaryBytes = 0;
    for (BlockSummaries s : summaries) {
      summaryBytes += s == null ? 0 : s.buffer.bytes();
    }
    return pages.size() * pageBytes + pageTable.bytes() + summaryBytes;
  }

  /**
   * Makes room for tokens up to {@code endToken} (exclusive), checking the capacity; a shared page
   * that the tokens from {@link #length()} on would be written into is replaced by a copy first.
   * Called with the backend's lock held.
   */
  void reserve(int endToken) {
    if (closed) {
      throw new IllegalStateException("the KV cache is closed");
    }
    if (endToken > capacity) {
      throw new IllegalStateException(
          "the sequence needs " + endToken + " tokens but the KV cache holds at most " + capacity);
    }
    int first = pages.size();
    int current = length / PAGE;
    if (current < pages.size() && pages.get(current).shared && endToken > length) {
      Page copy = new Page(memory.allocate(pageBytes, "a copy of a shared KV page"), this);
      device.copyWithinDevice(copy.buffer, pages.get(current).buffer, pageBytes);
      drop(pages.set(current, copy));
      first = current;
    }
    while (pages.size() * PAGE < endToken) {
      pages.add(new Page(memory.allocate(pageBytes, "a KV page of " + PAGE + " tokens"), this));
    }
    updatePageTable(first);
  }

  /** Uploads the device addresses of pages {@code from} on into the page table. */
  private void updatePageTable(int from) {
    if (pages.size() > from) {
      long[] addresses = new long[pages.size() - from];
      for (int i = 0; i < addresses.length; i++) {
        addresses[i] = pages.get(from + i).buffer.address();
      }
      staging.upload(MemorySegment.ofArray(addresses), pageTable, 8L * from);
    }
  }

  @Override
  public int pageTokens() {
    return PAGE;
  }

  @Override
  public String pageFormat() {
    return format;
  }

  @Override
  public long pageHostBytes() {
    return pageBytes;
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
    KvCacheChecks.attach(this, kvPage, page != null, page != null && page.shared, tokens, (long) pages.size() * PAGE);
    backend.locked(() -> {
      pages.add(page);
      updatePageTable(pages.size() - 1);
      return null;
    });
    length += tokens;
    version++;
  }

  @Override
  public KvPage upload(MemorySegment hostPage) {
    if (hostPage.byteSize() != pageBytes) {
      throw new IllegalArgumentException("host page of " + hostPage.byteSize() + " bytes, expected " + pageBytes);
    }
    return backend.locked(() -> {
      Page page = new Page(memory.allocate(pageBytes, "a KV page from the prefix cache"), this);
      // Straight from the caller's memory, without waiting: a host-tier copy (toHost) is pinned and goes
      // back to a pool that only this stream's later copies reuse; from plain memory the driver has
      // taken the bytes when the call returns.
      device.copyToDevice(page.buffer, 0, Pointer.to(hostPage.asByteBuffer()), pageBytes);
      page.shared = true;
      page.adopted(); // made for the prefix cache, to be attached by any number of sequences
      return page;
    });
  }

  @Override
  public void append(PagedKvCache source, int from, int to) {
    if (!(source instanceof CudaKvCache src) || !src.format.equals(format) || src.backend != backend) {
      throw new IllegalArgumentException("cache of another format: " + source.pageFormat() + ", expected " + format);
    }
    if (src == this) {
      throw new IllegalArgumentException("a cache cannot append its own tokens");
    }
    if (from < 0 || from > to || to > src.length) {
      throw new IllegalArgumentException("tokens [" + from + ", " + to + ") of a cache of " + src.length);
    }
    int count = to - from;
    if (count == 0) {
      return;
    }
    backend.locked(() -> {
      reserve(length + count);
      int granules = (length + count - 1) / GRANULE - length / GRANULE + 1;
      String kernel = "kv_append_" + element.suffix;
      for (int layer = 0; layer < layers; layer++) {
        device.launch(kernel, granules, kvHeads, Math.min(headDim, 128), 0, pageTable.address(),
            src.pageTable.address(), valueOffset, keySumOffset, querySumOffset, layer, kvHeads, headDim, length, from,
            count, src.length);
      }
      return null;
    });
    length += count;
    version++;
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
    for (Page p : pages) {
      drop(p);
    }
    pages.clear();
    memory.release(pageTable);
    for (int l = 0; l < layers; l++) {
      if (summaries[l] != null) {
        memory.release(summaries[l].buffer);
        summaries[l] = null;
      }
    }
    length = 0;
  }
}
