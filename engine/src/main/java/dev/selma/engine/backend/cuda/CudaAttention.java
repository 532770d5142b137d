package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionPlan;
import dev.selma.engine.attention.AttentionPlanner;
import dev.selma.engine.attention.AttentionStats;
import dev.selma.engine.attention.Rope;
import java.util.List;

/**
 * The host side of attention on the GPU: plans a layer's attention with {@link AttentionPlanner}
 * (ranking select-and-merge's candidate blocks on the GPU when the planner asks), uploads the plan's
 * arrays with a list of work items, and launches a kernel that executes the plan: {@code
 * attention_tc.cu} on tensor cores for prefill chunks ({@code attention_wgmma.cu}'s on Hopper, compute
 * capability 9.0), {@code attention_decode.cu} for one token (both
 * for bf16 pages, one position branch and head dimension 64 or 128), else {@code attention.cu}; the
 * decode kernels split the keys over several blocks and {@code attention_combine.cu} merges them.
 */
final class CudaAttention implements AutoCloseable {
  // Shapes of attention.cuh.
  private static final int KEYS = 32, ROWS = 32, THREADS = 128, ITEM_INTS = 5, MAX_DIM = 256;
  // Shapes of attention_tc.cu.
  private static final int TC_ROWS = 128, TC_KEYS = 64, TC_THREADS = 128, TC_PAD = 8, TC_MIN_TOKENS = 16;
  // attention_wgmma.cu: items of the same size (its WG_ROWS), steps of a key tile (swizzle.cuh's
  // KEY_TILE), WG_STAGES buffers of keys and of values, WG_RING slots of key tokens, three warpgroups.
  private static final int WG_ROWS = TC_ROWS, KEY_TILE = 128, WG_STAGES = 2, WG_RING = 4, WG_THREADS = 384;
  private static final int ROPE_KEYS_THREADS = 256, ROPE_KEYS_PER_BLOCK = 64;
  /**
   * Bytes of keys rotated once per plan entry (rope_keys.cu) that one launch of the tensor-core kernel
   * reads; a plan with more runs its entries in batches that fit (an entry larger than this is a batch
   * of its own). Not final so that the GPU tests can batch the plans of small models.
   */
  static volatile long rotatedKeysBytes = 1L << 30;

  /** Entries [firstEntry, endEntry) and their work items, whose rotated keys fit the scratch together. */
  private record TensorCoreBatch(int firstEntry, int endEntry, int firstItem, int items, int rows, int maxKeys) {}
  // Shapes of attention_decode.cu.
  private static final int DECODE_THREADS = 128, DECODE_MIN_CHUNKS = 2;
  // Shapes of attention_combine.cu.
  private static final int COMBINE_THREADS = 256, COMBINE_MAX_SPLITS = 1024;
  private static final int TOPK_THREADS = 256;

  private final CudaDevice device;
  private final DeviceMemory memory;
  private final Staging staging;
  private final boolean specialisedAllowed;
  /** Whether prefill's tensor-core kernel is attention_wgmma.cu's (sm_90a code, compute capability 9.0 only). */
  private final boolean hopper;
  private RopeTables rope;
  private DeviceBuffer partials, scratch, rotatedKeys;

  /**
   * Decode tokens' own choices (selection QUERY) on their way to the host, per layer, in two slots used in
   * turn: the host plans such a token's attention without waiting for them, so they reach its statistics
   * later, and a step queued while the one before runs copies into the other slot.
   */
  private final java.util.Map<Integer, Choices[]> choices = new java.util.HashMap<>();
  /** Waits for the stream and hands every copied choice to its statistics, under the backend's lock. */
  private final Runnable settle;

  private static final class Choices {
    jcuda.Pointer host;
    int capacity, count;
    AttentionStats stats;
    /** The decode step that queued the copy ({@link #steps}). */
    long step;
  }

  /** Decode steps begun ({@link #stepBegins}), and an event after each of the last few ({@link #stepEnds}). */
  private long steps;
  private final jcuda.driver.CUevent[] stepEnds = new jcuda.driver.CUevent[4];

  /**
   * Prefill chunks' plans, per layer, whose choices group_plan_blocks wrote on the GPU: the plan's key
   * blocks on their way to the host, for its statistics. A layer's previous copy, a chunk older, has
   * long arrived when the next is queued: waiting for its event does not stall the stream.
   */
  private final java.util.Map<Integer, PlanChoices> planChoices = new java.util.HashMap<>();

  private static final class PlanChoices {
    jcuda.Pointer host;
    jcuda.driver.CUevent copied;
    int capacity;
    AttentionStats stats;
    AttentionPlan plan;
  }

  CudaAttention(CudaDevice device, DeviceMemory memory, Staging staging, boolean specialised, Runnable settle) {
    this.settle = settle;
    this.specialisedAllowed = specialised;
    this.device = device;
    this.hopper = device.computeCapability() == 90 && device.has("attention_wgmma_bf16_d128");
    this.memory = memory;
    this.staging = staging;
  }

  /**
   * Runs a layer's attention. {@code store}, when not null, is the chunk's keys and values still to be
   * stored: a dense plan's decode kernel on bf16 pages stores them in the block that reads them
   * (kv_store.cuh), else they are stored first.
   */
  void run(CudaActivations out, CudaActivations q, CudaKvCache cache, int layer, Rope ropeOfModel,
      AttentionConfig config, AttentionStats stats, KvStore store) {
    if (store != null && config.scheme() != AttentionConfig.Scheme.DENSE) {
      store.launch(device); // before any ranking reads the cache
      store = null;
    }
    int start = cache.length(), chunk = q.rows(), d = cache.headDim, kvHeads = cache.kvHeads;
    int group = q.cols() / d / kvHeads;
    if (d > MAX_DIM || d % 2 != 0) {
      throw new IllegalArgumentException("head dimension " + d + ": the CUDA attention kernel takes even sizes up to "
          + MAX_DIM);
    }
    AttentionPlan[] planned = new AttentionPlan[1];
    GpuRanker ranker = new GpuRanker(cache, layer, config, start, chunk, q, stats);
    // Under the profile this includes the ranking kernels, which are also listed by name.
    device.timed("attention plan (host + ranking)", () -> planned[0] = AttentionPlanner.plan(config, start, chunk,
        kvHeads, ranker));
    AttentionPlan plan = planned[0];
    // A decode token that ranked with its own query, and a prefill chunk that ranked at all, have
    // placeholders for their choices in the plan: token_plan_blocks or group_plan_blocks writes them
    // after the upload, so the host never waits for the ranking, and the statistics come with a copy.
    boolean placeholders = ranker.bestAt >= 0;
    if (!placeholders) {
      stats.record(layer, plan);
    }
    AttentionPlan.PositionMap map = plan.positionMap();
    CudaKvCache.Element element = cache.element;
    boolean specialised = element != CudaKvCache.Element.F32 && (d == 64 || d == 128) && !map.selfExtend();
    // rope_keys.cu also writes each entry's values as bf16 beside its rotated keys: fp8 pages' scaled, and
    // on Hopper always, as key tiles that attention_wgmma.cu copies whole.
    boolean valueRows = element == CudaKvCache.Element.FP8 || hopper;
    boolean tensorCores = specialisedAllowed && specialised && chunk >= TC_MIN_TOKENS
        && tensorCoreSharedBytes(d) <= device.sharedMemoryOptIn();
    // attention_decode.cu: groups up to 4 for every specialised page, up to 8 for bf16 of width 128; a
    // warp reads runs of 32 / (the kernel's group) keys, which must not straddle plan blocks.
    int decodeGroup = group <= 4 ? 4 : 8;
    boolean decode = specialisedAllowed && specialised && chunk == 1 && plan.blockSize() % (32 / decodeGroup) == 0
        && (group <= 4 || group <= 8 && element == CudaKvCache.Element.BF16 && d == 128);
    int rowsPerItem = tensorCores ? TC_ROWS : ROWS;

    // Work items: up to rowsPerItem (token, query head) rows of one plan entry.
    int tokensPerItem = Math.max(1, rowsPerItem / group), headsPerItem = Math.min(group, rowsPerItem);
    int items = 0, maxKeys = 0;
    for (int tile = 0; tile < plan.tiles(); tile++) {
      int queries = plan.tileEnd()[tile] - plan.tileStart()[tile];
      items += kvHeads * ceilDiv(queries, tokensPerItem) * ceilDiv(group, headsPerItem);
      for (int h = 0; h < kvHeads; h++) {
        int e = plan.entry(tile, h);
        maxKeys = Math.max(maxKeys, (plan.keyOffsets()[e + 1] - plan.keyOffsets()[e]) * plan.blockSize());
      }
    }
    int[] work = new int[items * ITEM_INTS];
    int w = 0;
    for (int tile = 0; tile < plan.tiles(); tile++) {
      int tileItems = ceilDiv(plan.tileEnd()[tile] - plan.tileStart()[tile], tokensPerItem);
      for (int h = 0; h < kvHeads; h++) {
        for (int i = 0; i < tileItems; i++) {
          // The tensor-core kernels run an item a block, in list order: an entry's last tokens, which see
          // the most keys, first, so that a causal chunk's shortest items fill the last wave.
          int t = plan.tileStart()[tile] + (tensorCores ? tileItems - 1 - i : i) * tokensPerItem;
          for (int g = 0; g < group; g += headsPerItem) {
            work[w++] = plan.entry(tile, h);
            work[w++] = t;
            work[w++] = Math.min(tokensPerItem, plan.tileEnd()[tile] - t);
            work[w++] = g;
            work[w++] = Math.min(headsPerItem, group - g);
          }
        }
      }
    }
    // Few items (decode): split each entry's keys so that the GPU has two blocks per multiprocessor (four
    // for the decode kernel, whose warps wait on their keys' loads), but give a decode split at least
    // DECODE_MIN_CHUNKS chunks of keys: a split's fixed costs (the plan's lookups, the merge of its
    // warps, its partial result and attention_combine's share) outweigh a few keys' loads. The
    // tensor-core kernel runs prefill chunks, which have items enough, and never splits.
    int chunks = tensorCores ? 1 : Math.max(1, ceilDiv(maxKeys, KEYS));
    int splits = decode
        ? Math.min(ceilDiv(chunks, DECODE_MIN_CHUNKS), ceilDiv(4 * device.multiprocessors(), items))
        : Math.min(chunks, ceilDiv(2 * device.multiprocessors(), items));
    splits = Math.max(1, Math.min(splits, COMBINE_MAX_SPLITS));
    int chunksPerSplit = ceilDiv(chunks, splits);
    splits = ceilDiv(chunks, chunksPerSplit);

    // Tensor cores: each entry's keys rotated once, row rowBase[e] + f of its batch's scratch for its
    // f-th key (on Hopper in key tiles, so an entry's rows are padded to whole tiles). Work items were
    // listed entry by entry, so a batch's items are consecutive.
    int entries = plan.keyOffsets().length - 1;
    int[] rowBase = new int[tensorCores ? entries : 0];
    List<TensorCoreBatch> batches = new java.util.ArrayList<>();
    if (tensorCores) {
      long capRows = Math.max(1, rotatedKeysBytes / (2L * d * (valueRows ? 2 : 1)));
      int first = 0, firstItem = 0, batchItems = 0, rows = 0, batchMaxKeys = 0;
      for (int e = 0; e < entries; e++) {
        int keys = (plan.keyOffsets()[e + 1] - plan.keyOffsets()[e]) * plan.blockSize();
        if (hopper) {
          keys = ceilDiv(keys, KEY_TILE) * KEY_TILE;
        }
        if (e > first && (long) rows + keys > capRows) {
          batches.add(new TensorCoreBatch(first, e, firstItem, batchItems, rows, batchMaxKeys));
          first = e;
          firstItem += batchItems;
          batchItems = rows = batchMaxKeys = 0;
        }
        rowBase[e] = rows;
        rows += keys;
        batchMaxKeys = Math.max(batchMaxKeys, keys);
        int tile = e / kvHeads;
        batchItems += ceilDiv(plan.tileEnd()[tile] - plan.tileStart()[tile], tokensPerItem)
            * ceilDiv(group, headsPerItem);
      }
      batches.add(new TensorCoreBatch(first, entries, firstItem, batchItems, rows, batchMaxKeys));
    }

    // One upload for the whole plan: the ring may wrap between uploads, never inside one.
    int[][] parts = {work, plan.keyOffsets(), plan.keyBlocks(), plan.keyPositions(), plan.queryShift(), rowBase};
    int total = 0;
    for (int[] p : parts) {
      total += p.length;
    }
    int[] packed = new int[total];
    long[] at = new long[parts.length];
    int o = 0;
    for (int i = 0; i < parts.length; i++) {
      at[i] = 4L * o;
      System.arraycopy(parts[i], 0, packed, o, parts[i].length);
      o += parts[i].length;
    }
    // Placeholders are written on the GPU: such a plan is uploaded afresh every time.
    long base = placeholders ? staging.ints(packed) : staging.readOnlyInts(packed);
    long itemsAt = base + at[0], offsetsAt = base + at[1], blocksAt = base + at[2], positionsAt = base + at[3],
        shiftAt = base + at[4], rowBaseAt = base + at[5];
    int reindexed = config.positions() instanceof AttentionConfig.Reindexed ? 1 : 0;
    if (placeholders && ranker.token) {
      int first = start / (config.merge() * config.blockSize()) * config.merge();
      int sinks = Math.min(config.sinkBlocks(), Math.max(0, first - config.windowBlocks()));
      device.launch("token_plan_blocks", kvHeads, 1, 64, 0, scratch.address() + ranker.bestAt, config.topK(), sinks,
          offsetsAt, blocksAt, positionsAt, reindexed, plan.blockSize());
    } else if (placeholders) {
      int words = ranker.bitmapWords();
      device.launch("group_plan_blocks", plan.tiles(), kvHeads, 128, 4 * (words + config.topK()),
          scratch.address() + ranker.bestAt, ranker.rows(), ranker.firstQueryBlock,
          start / (config.merge() * config.blockSize()), config.merge(), config.sinkBlocks(), config.windowBlocks(),
          config.topK(), kvHeads, offsetsAt, blocksAt, positionsAt, reindexed, plan.blockSize(), words);
      sendPlanChoices(layer, stats, plan, blocksAt);
    }
    RopeTables tables = tables(ropeOfModel);
    tables.ensure(plan.keyLength() + (long) map.neighbourWindow());
    float scale = (float) (1 / Math.sqrt(d));
    if (tensorCores) {
      for (TensorCoreBatch b : batches) {
        if (b.items() == 0 || b.maxKeys() == 0) {
          continue;
        }
        long rowBytes = 2L * b.rows() * d;
        rotatedKeys = grow(rotatedKeys, rowBytes * (valueRows ? 2 : 1), "keys rotated for tensor-core attention");
        long rotated = rotatedKeys.address(), values = valueRows ? rotated + rowBytes : 0;
        device.launch("rope_keys_" + element.suffix, ceilDiv(b.maxKeys(), ROPE_KEYS_PER_BLOCK),
            b.endEntry() - b.firstEntry(),
            ROPE_KEYS_THREADS, 0, rotated, values, rowBaseAt, b.firstEntry(), cache.pageTable(), cache.valueOffset, layer,
            kvHeads, d, offsetsAt, blocksAt,
            positionsAt, plan.blockSize(), plan.keyLength(), map.period(), tables.loCos(), tables.loSin(),
            tables.hiCos(), tables.hiSin(), ropeOfModel.attentionFactor(), cache.interleavedRope ? 1 : 0,
            hopper ? 1 : 0);
        device.launch((hopper ? "attention_wgmma_bf16_d" : "attention_tc_bf16_d") + d, b.items(), 1,
            hopper ? WG_THREADS : TC_THREADS, tensorCoreSharedBytes(d),
            out.address(), q.address(), q.cols(), start, cache.pageTable(), cache.valueOffset, layer, kvHeads, group,
            itemsAt, b.firstItem(), offsetsAt, blocksAt, positionsAt, shiftAt, plan.blockSize(), plan.keyLength(),
            map.period(), tables.loCos(), tables.loSin(), tables.hiCos(), tables.hiSin(),
            ropeOfModel.attentionFactor(), cache.interleavedRope ? 1 : 0, scale, rotated, values, rowBaseAt);
      }
      return;
    }

    // The decode kernel's block that reads the token's own key stores it (the token's place in the dense
    // plan's list of keys gives the split).
    int storeSplit = -1;
    if (store != null && decode && element == CudaKvCache.Element.BF16) {
      int e = plan.entry(0, 0), from = plan.keyOffsets()[e], blocks = plan.keyOffsets()[e + 1] - from;
      int block = start / plan.blockSize();
      for (int i = 0; i < blocks; i++) {
        if (plan.keyBlocks()[from + i] == block) {
          storeSplit = (i * plan.blockSize() + start % plan.blockSize()) / (chunksPerSplit * KEYS);
          break;
        }
      }
    }
    if (store != null && storeSplit < 0) {
      store.launch(device);
      store = null;
    }
    long partO = 0, partMl = 0;
    if (splits > 1) {
      long rows = (long) splits * items * ROWS;
      partials = grow(partials, rows * (d + 2) * 4, "attention partial results");
      partO = partials.address();
      partMl = partO + rows * d * 4;
    }
    if (decode) {
      device.launch("attention_decode_" + element.suffix + "_d" + d + "_g" + decodeGroup, items, splits,
          DECODE_THREADS, 0,
          out.address(), q.address(), q.cols(), start, cache.pageTable(), cache.valueOffset, layer, kvHeads, d, group,
          itemsAt, offsetsAt, blocksAt, positionsAt, shiftAt, plan.blockSize(), plan.keyLength(), map.period(),
          tables.loCos(), tables.loSin(), tables.hiCos(), tables.hiSin(), ropeOfModel.attentionFactor(),
          cache.interleavedRope ? 1 : 0, scale, chunksPerSplit, partO, partMl, store == null ? 0L : store.k(),
          store == null ? 0L : store.v(), cache.keySumOffset, cache.querySumOffset, storeSplit);
    } else {
      boolean two = map.selfExtend();
      int dp = d + 1;
      int sharedBytes = 4 * (ROWS * dp * (two ? 2 : 1) + KEYS * dp * (two ? 2 : 1) + KEYS * d + 2 * KEYS + 2 * ROWS);
      if (sharedBytes > device.sharedMemoryOptIn()) {
        throw new IllegalArgumentException("attention with head dimension " + d + " needs " + sharedBytes
            + " bytes of shared memory; the GPU offers " + device.sharedMemoryOptIn());
      }
      device.launch(kernel(element, d), items, splits, THREADS, sharedBytes,
          out.address(), q.address(), q.cols(), start, cache.pageTable(), cache.valueOffset, layer, kvHeads, d, group,
          itemsAt, offsetsAt, blocksAt, positionsAt, shiftAt, plan.blockSize(), plan.keyLength(),
          map.groupSize(), map.neighbourWindow(), map.period(), tables.loCos(), tables.loSin(), tables.hiCos(),
          tables.hiSin(), ropeOfModel.attentionFactor(), cache.interleavedRope ? 1 : 0, scale,
          chunksPerSplit, partO, partMl);
    }
    if (splits > 1) {
      // A block per row of the largest item: one token's item has a row per query head of its group.
      device.launch("attention_combine", items, Math.min(tokensPerItem, chunk) * headsPerItem, COMBINE_THREADS, 0,
          out.address(), q.cols(), start, kvHeads, d, group, itemsAt, splits, partO, partMl);
    }
  }

  /**
   * Whether a decode step (one token after the cache's tokens) under {@code config} plans without
   * waiting for the GPU, so that it can be recorded: dense attention, a token that ranks with its own
   * query (its choice stays on the GPU), a group whose candidates are all read, or key-bound and mean
   * selection whose ranking every layer still holds (until a block completes; see GpuRanker).
   */
  boolean capturable(CudaKvCache cache, AttentionConfig config) {
    int start = cache.length();
    if (stepUploadBytes(cache, config) > staging.roomForAStep()) {
      return false;
    }
    if (config.scheme() == AttentionConfig.Scheme.DENSE || config.tokenChooses(start)) {
      return true;
    }
    int groupTokens = config.merge() * config.blockSize();
    int first = start / groupTokens * config.merge();
    int windowStart = Math.max(0, first - config.windowBlocks());
    if (windowStart - Math.min(config.sinkBlocks(), windowStart) <= config.topK()) {
      return true;
    }
    int firstQueryBlock = Math.max(0, first - config.merge()), blocks = (start + 1) / config.blockSize();
    for (int layer = 0; layer < cache.layers; layer++) {
      CudaKvCache.Ranking r = cache.ranking(layer);
      if (r == null || !r.matches(config, firstQueryBlock, blocks, cache.version())) {
        return false;
      }
    }
    return true;
  }

  /**
   * A bound on what a decode step (one token after the cache's tokens) uploads: every layer's plan (two
   * ints a listed block for each KV head, dense attention listing every block), its work items and
   * offsets, and room for a page table and RoPE tables that grow.
   */
  long stepUploadBytes(CudaKvCache cache, AttentionConfig config) {
    int b = config.blockSize(), start = cache.length();
    long listed = config.scheme() == AttentionConfig.Scheme.DENSE
        ? start / b + 2
        : (long) config.sinkBlocks() + config.topK() + config.windowBlocks() + config.merge() + 2;
    long perLayer = 4L * cache.kvHeads * (2 * listed + 16) + 256;
    return cache.layers * perLayer + (4L << 20);
  }

  /**
   * Forgets what a decode step that failed while recorded left behind on the host as if its work had
   * run: choices queued for copies that never ran, and the cache's block summaries and rankings.
   */
  void forgetRecordedStep(CudaKvCache cache) {
    for (Choices[] slots : choices.values()) {
      for (Choices c : slots) {
        if (c.step == steps) {
          c.stats = null;
        }
      }
    }
    cache.forgetSummaries();
  }

  /**
   * Shared memory of the tensor-core kernel: bf16 queries, buffers of keys and of values, then indices
   * (attention_wgmma.cu: barriers and key-token slots too); attention_tc.cu pads each row,
   * attention_wgmma.cu swizzles and aligns its tiles to 1,024 bytes.
   */
  private int tensorCoreSharedBytes(int d) {
    if (hopper) {
      return 2 * (WG_ROWS * d + 2 * WG_STAGES * KEY_TILE * d) + 8 * 4 * WG_STAGES + 4 * WG_RING * (KEY_TILE + 1)
          + 4 * 2 * WG_ROWS + 1024;
    }
    int ld = d + TC_PAD;
    return 2 * (TC_ROWS * ld + 4 * TC_KEYS * ld) + 4 * (2 * TC_KEYS + 2 * TC_ROWS);
  }

  /**
   * The general attention kernel for a page element and head dimension: attention.cu instantiates bf16
   * for widths 32·2^i, and one fp32 and one fp8 kernel for every width.
   */
  static String kernel(CudaKvCache.Element element, int headDim) {
    return element == CudaKvCache.Element.BF16
        ? "attention_bf16_d" + Math.max(32, Integer.highestOneBit(headDim - 1) << 1)
        : "attention_" + element.suffix;
  }

  /** Every attention kernel this device runs, for the shared-memory opt-in. */
  String[] kernels() {
    java.util.List<String> names = new java.util.ArrayList<>(
        List.of(kernel(CudaKvCache.Element.F32, MAX_DIM), kernel(CudaKvCache.Element.FP8, MAX_DIM)));
    for (int width = 32; width <= MAX_DIM; width *= 2) {
      names.add(kernel(CudaKvCache.Element.BF16, width));
    }
    String tensorCores = hopper ? "attention_wgmma_bf16_d" : "attention_tc_bf16_d";
    names.add(tensorCores + 64);
    names.add(tensorCores + 128);
    names.add("group_plan_blocks");
    return names.toArray(String[]::new);
  }

  private RopeTables tables(Rope r) {
    if (rope == null || rope.rope() != r) {
      if (rope != null) {
        rope.close();
      }
      rope = new RopeTables(r, memory, staging);
    }
    return rope;
  }

  private DeviceBuffer grow(DeviceBuffer b, long bytes, String what) {
    if (b != null && b.bytes() >= bytes) {
      return b;
    }
    if (b != null) {
      memory.release(b);
    }
    return memory.allocate(bytes, what);
  }

  private static long align(long bytes) {
    return (bytes + 255) & -256L;
  }

  private static int ceilDiv(long a, long b) {
    return (int) ((a + b - 1) / b);
  }

  /**
   * Select-and-merge's ranking for the planner, done where the keys are. The first request computes,
   * on the GPU, the means of the chunk's selecting query blocks, the summaries of the key blocks
   * completed since the last chunk (the cache keeps the others), the scores of every selecting query
   * block against every earlier complete block, and each query block's top k. A prefill chunk's and a
   * choosing decode token's indices stay there: the planner gets placeholders, and a kernel writes the
   * choices into the uploaded plan, so the host never waits for the GPU to plan. Other decode steps
   * copy the k indices per query block back, once until a block completes. Scratch grows with (chunk
   * blocks) × (sequence blocks), never with the square of the sequence.
   */
  private final class GpuRanker implements AttentionPlanner.BlockRanker {
    private final CudaKvCache cache;
    private final AttentionConfig config;
    private final CudaActivations q;
    private final int layer;
    final int firstQueryBlock, blocks;
    /** One token ranking with its own query (Selection.QUERY): one row, for {@link AttentionPlanner#TOKEN}. */
    final boolean token;
    /** A prefill chunk: its choices stay on the GPU, where group_plan_blocks puts them into the plan. */
    final boolean prefill;
    private final AttentionStats stats;
    /** Where the choices lie in the scratch once ranked on the GPU for it (-1 before): the planner got placeholders. */
    long bestAt = -1;
    private int[] best;

    GpuRanker(CudaKvCache cache, int layer, AttentionConfig config, int start, int chunk, CudaActivations q,
        AttentionStats stats) {
      this.stats = stats;
      this.cache = cache;
      this.config = config;
      this.layer = layer;
      this.q = q;
      this.token = chunk == 1 && config.tokenChooses(start);
      this.blocks = (start + chunk) / config.blockSize();
      this.prefill = chunk > 1 && 4L * (bitmapWords() + config.topK()) <= device.sharedMemoryOptIn();
      int groupTokens = config.merge() * config.blockSize();
      // block_topk gives row r the candidates of the group after query block firstQueryBlock + r's: a
      // token's row is the last block of the group before its own.
      this.firstQueryBlock = token ? start / groupTokens * config.merge() - 1
          : Math.max(0, start / groupTokens * config.merge() - config.merge());
    }

    @Override
    public int[] best(int kvHead, int queryBlock, int from, int to, int k) {
      boolean asked = token ? queryBlock == AttentionPlanner.TOKEN
          : queryBlock >= firstQueryBlock && queryBlock < blocks;
      if (!asked || to > blocks || k != config.topK()) {
        throw new IllegalStateException("top " + k + " asked for query block " + queryBlock + " and key blocks ["
            + from + ", " + to + ") outside the computed range");
      }
      if (token || prefill) {
        if (bestAt < 0) {
          compute(); // a new query every token, new query blocks every chunk: nothing to keep
        }
        // Placeholders, ascending as a choice is: token_plan_blocks overwrites them on the GPU.
        int[] placeholder = new int[k];
        java.util.Arrays.setAll(placeholder, i -> from + i);
        return placeholder;
      }
      if (best == null) {
        // Decode asks the same question for every token until a block completes: the ranking of the
        // complete blocks cannot have changed, so the cache keeps the last answer per layer.
        CudaKvCache.Ranking last = cache.ranking(layer);
        if (last != null && last.matches(config, firstQueryBlock, blocks, cache.version())) {
          best = last.best();
        } else {
          compute();
          cache.ranking(layer, new CudaKvCache.Ranking(config, firstQueryBlock, blocks, cache.version(), best));
        }
      }
      int at = (kvHead * rows() + queryBlock - firstQueryBlock) * k;
      return java.util.Arrays.copyOfRange(best, at, at + k);
    }

    /**
     * Words of group_plan_blocks' bitmap of a group's candidates, enough for the chunk's last group; its
     * shared memory holds them and the group's k choices.
     */
    int bitmapWords() {
      return blocks / 32 + 1;
    }

    /** Selecting rows per KV head. */
    int rows() {
      return token ? 1 : blocks - firstQueryBlock;
    }

    private void compute() {
      int h = cache.kvHeads, d = cache.headDim, k = config.topK(), queryBlocks = rows();
      boolean bound = config.selection().bounds();
      long queryMeans = (long) queryBlocks * h * d;
      long count = (long) h * queryBlocks * blocks, rows = (long) h * queryBlocks;
      if (rows * k > Integer.MAX_VALUE - 8) {
        throw new IllegalStateException("too many block choices for one chunk: " + rows * k);
      }
      // The 64-bit keys of block_topk need 8-byte alignment: start each array on 256 bytes.
      long bestAt = align(4 * (queryMeans + count));
      long selectedAt = align(bestAt + 4 * rows * k);
      scratch = grow(scratch, selectedAt + 8 * rows * k, "select-and-merge block scores");
      long queryAt = scratch.address(), scoresAt = queryAt + 4 * queryMeans;
      int threads = Math.min(d, 128), b = config.blockSize();
      if (token) {
        device.launch("token_query_means", h, 1, threads, 0, q.address(), q.cols() / d / h, d, queryAt);
      } else {
        device.launch("block_means", queryBlocks, h, threads, 0, cache.pageTable(), cache.querySumOffset, layer, h,
            d, b, firstQueryBlock, queryAt);
      }
      // The key blocks' summaries (means, or bounds for BOUND) that the cache does not hold yet.
      CudaKvCache.BlockSummaries s = cache.summaries(layer, config.selection(), b, blocks);
      long rowBytes = 4L * h * d, keyAt = s.buffer.address(), hiAt = keyAt + s.hiOffset(h, d);
      if (s.blocks < blocks) {
        if (bound) {
          device.launch("block_key_bounds_" + cache.element.suffix, blocks - s.blocks, h, threads, 0,
              cache.pageTable(), cache.valueOffset, layer, h, d, b, s.blocks, keyAt, hiAt);
        } else {
          device.launch("block_means", blocks - s.blocks, h, threads, 0, cache.pageTable(), cache.keySumOffset,
              layer, h, d, b, s.blocks, keyAt + rowBytes * s.blocks);
        }
        s.blocks = blocks;
      }
      int warpsPerBlock = 8;
      if (bound) {
        device.launch("block_bound_scores", ceilDiv((long) h * blocks, warpsPerBlock), 1, 32 * warpsPerBlock, 0,
            queryAt, keyAt, hiAt, queryBlocks, blocks, h, d, scoresAt);
      } else {
        device.launch("block_scores", ceilDiv((long) h * blocks, warpsPerBlock), 1, 32 * warpsPerBlock, 0, queryAt,
            keyAt, queryBlocks, blocks, h, d, scoresAt);
      }
      // Fewer rows than multiprocessors (a decode token's, one a KV head): a row's scan of every candidate
      // would wait on the loads of a few warps, so it gets the most threads a block has.
      int topkThreads = rows < device.multiprocessors() ? 1024 : TOPK_THREADS;
      device.launch("block_topk", queryBlocks, h, topkThreads, 0, scoresAt, queryBlocks, blocks, firstQueryBlock,
          config.merge(), config.sinkBlocks(), config.windowBlocks(), k, scratch.address() + bestAt,
          scratch.address() + selectedAt);
      if (token) {
        this.bestAt = bestAt;
        sendChoices(layer, stats, scratch, bestAt, (int) (rows * k));
      } else if (prefill) {
        this.bestAt = bestAt;
      } else {
        best = new int[(int) (rows * k)];
        staging.downloadInts(scratch, bestAt, best, best.length);
      }
    }
  }

  /**
   * Queues the copy of a decode token's choice ({@code count} block indices at {@code offset} of {@code
   * src}) to the host, for {@code stats}; the layer's previous copy is handed over first.
   */
  private void sendChoices(int layer, AttentionStats stats, DeviceBuffer src, long offset, int count) {
    Choices[] slots = choices.computeIfAbsent(layer, l -> new Choices[] {new Choices(), new Choices()});
    Choices c = slots[(int) (steps & 1)];
    if (c.stats != null && c.step == steps) { // a second copy in one step (not a decode step's)
      device.synchronize();
      deliverChoices();
    } else if (c.stats != null) {
      handOver(layer, c);
    }
    if (c.capacity < count) {
      if (c.host != null) {
        device.freePinned(c.host);
      }
      c.host = device.allocatePinned(4L * count);
      c.capacity = count;
    }
    device.copyToHost(c.host, src, offset, 4L * count);
    c.count = count;
    c.stats = stats;
    c.step = steps;
    stats.deliverLater(settle);
  }

  /**
   * A decode step begins: its choices' copies are its own. The copies of two steps ago, whose slots it
   * reuses, are handed over now, before the step is recorded (waiting for that step if it still runs,
   * which a generation, having read a later token, never does).
   */
  void stepBegins() {
    steps++;
    for (java.util.Map.Entry<Integer, Choices[]> e : choices.entrySet()) {
      Choices c = e.getValue()[(int) (steps & 1)];
      if (c.stats != null) {
        handOver(e.getKey(), c);
      }
    }
  }

  /** Hands over a decode token's choices copied in an earlier step, once that step is done. */
  private void handOver(int layer, Choices c) {
    device.await(stepEnds[(int) (c.step % stepEnds.length)]);
    deliver(layer, c);
  }

  /** The step's work is all queued: marks its end, which its choices' copies wait for. */
  void stepEnds() {
    int i = (int) (steps % stepEnds.length);
    if (stepEnds[i] == null) {
      stepEnds[i] = device.newEvent();
    }
    device.record(stepEnds[i]);
  }

  /** Hands a decode token's copied choices to their statistics. */
  private static void deliver(int layer, Choices c) {
    int[] blocks = new int[c.count];
    c.host.getByteBuffer(0, 4L * c.count).order(java.nio.ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(blocks);
    c.stats.recordChoices(layer, blocks);
    c.stats = null;
  }

  /**
   * Queues the copy of a prefill plan's key blocks ({@code plan} with the GPU's choices, at device
   * address {@code blocksAt}) to the host, for {@code stats}; the layer's previous copy is handed over
   * first.
   */
  private void sendPlanChoices(int layer, AttentionStats stats, AttentionPlan plan, long blocksAt) {
    PlanChoices c = planChoices.computeIfAbsent(layer, l -> new PlanChoices());
    if (c.stats != null) {
      device.await(c.copied);
      deliver(layer, c);
    }
    int n = plan.keyBlocks().length;
    if (c.capacity < n) {
      if (c.host != null) {
        device.freePinned(c.host);
      }
      c.host = device.allocatePinned(4L * n);
      c.capacity = n;
    }
    if (c.copied == null) {
      c.copied = device.newEvent();
    }
    staging.copyBack(blocksAt, c.host, 4L * n);
    device.record(c.copied);
    c.stats = stats;
    c.plan = plan;
    stats.deliverLater(settle);
  }

  /** Records a prefill plan's statistics with the key blocks the GPU chose, copied into {@code c.host}. */
  private static void deliver(int layer, PlanChoices c) {
    AttentionPlan p = c.plan;
    int[] blocks = new int[p.keyBlocks().length];
    c.host.getByteBuffer(0, 4L * blocks.length).order(java.nio.ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(blocks);
    c.stats.record(layer, new AttentionPlan(p.blockSize(), p.keyLength(), p.kvHeads(), p.tileStart(), p.tileEnd(),
        p.keyOffsets(), blocks, p.keyPositions(), p.keySelected(), p.queryShift(), p.positionMap()));
    c.stats = null;
    c.plan = null;
  }

  /** Hands the copied choices to their statistics; the stream has been synchronised since they were queued. */
  void deliverChoices() {
    for (java.util.Map.Entry<Integer, PlanChoices> e : planChoices.entrySet()) {
      if (e.getValue().stats != null) {
        deliver(e.getKey(), e.getValue());
      }
    }
    for (java.util.Map.Entry<Integer, Choices[]> e : choices.entrySet()) {
      for (Choices c : e.getValue()) {
        if (c.stats != null) {
          deliver(e.getKey(), c);
        }
      }
    }
  }

  @Override
  public void close() {
    for (Choices[] slots : choices.values()) {
      for (Choices c : slots) {
        if (c.host != null) {
          device.freePinned(c.host);
        }
      }
    }
    for (jcuda.driver.CUevent e : stepEnds) {
      if (e != null) {
        device.destroy(e);
      }
    }
    for (PlanChoices c : planChoices.values()) {
      if (c.host != null) {
        device.freePinned(c.host);
      }
      if (c.copied != null) {
        device.destroy(c.copied);
      }
    }
    if (rope != null) {
      rope.close();
    }
    if (partials != null) {
      memory.release(partials);
    }
    if (rotatedKeys != null) {
      memory.release(rotatedKeys);
    }
    if (scratch != null) {
      memory.release(scratch);
    }
  }
}
