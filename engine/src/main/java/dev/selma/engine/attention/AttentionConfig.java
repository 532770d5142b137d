package dev.selma.engine.attention;

import dev.selma.engine.model.ModelConfig;

/**
 * How a sequence attends: which keys each query reads ({@link Scheme}) and which positions RoPE gives
 * them ({@link Positions}). Set per model (a profile's defaults) and per request; {@link AttentionPlanner}
 * turns it into an {@link AttentionPlan} for every layer and chunk.
 *
 * <p>Sizes are in blocks of {@code blockSize} tokens. Select-and-merge reads, for every group of
 * {@code merge} consecutive query blocks, the first {@code sinkBlocks} blocks, up to {@code topK}
 * blocks chosen by the correlation of block means, the {@code windowBlocks} blocks just before the
 * group and the group's own blocks (causally masked). With {@code topK} at least the number of blocks
 * it chooses from, that is every earlier key, i.e. exactly dense attention.
 *
 * @param scheme dense or select-and-merge
 * @param blockSize tokens per block: a power of two, at least {@link #MIN_BLOCK_SIZE}
 * @param topK blocks chosen per query group (select-and-merge)
 * @param merge consecutive query blocks that share one chosen set (select-and-merge)
 * @param sinkBlocks leading blocks every group reads (select-and-merge)
 * @param windowBlocks blocks just before a group that it always reads (select-and-merge)
 * @param positions the positions RoPE gives queries and keys
 * @param ntkScale static NTK-aware RoPE base change {@code base·s^(d/(d−2))}; 1 = off
 * @param selection how select-and-merge scores a key block for a query block
 */
public record AttentionConfig(
    Scheme scheme,
    int blockSize,
    int topK,
    int merge,
    int sinkBlocks,
    int windowBlocks,
    Positions positions,
    double ntkScale,
    Selection selection) {

  /** A configuration with the paper's block scores ({@link Selection#MEAN}). */
  public AttentionConfig(Scheme scheme, int blockSize, int topK, int merge, int sinkBlocks, int windowBlocks,
      Positions positions, double ntkScale) {
    this(scheme, blockSize, topK, merge, sinkBlocks, windowBlocks, positions, ntkScale, Selection.MEAN);
  }

  /** How select-and-merge scores key block j for a query block with mean query q. */
  public enum Selection {
    /**
     * {@code q · mean(keys of j)}: the correlation of block means, the select-and-merge paper's rule.
     * It rewards blocks that resemble the average query, so a single distinctive key (a needle among
     * repetitive text) can rank below the filler.
     */
    MEAN("mean"),
    /**
     * {@code Σ_d max(q_d·min_d, q_d·max_d)} over the element-wise minimum and maximum of the block's
     * keys: an upper bound of {@code q · k} for any key k of the block (as Quest, arXiv 2406.10774),
     * so a block holding one key that matches the query ranks high.
     */
    BOUND("bound"),
    /**
     * BOUND, and a decode step (one token appended on its own to sample from, the prompt's last token
     * included, which generation runs alone) ranks with its own query (the mean of its KV head's query
     * heads) instead of the preceding group's blocks, as Quest chooses per decode step: the question at
     * the end of a prompt, not the text before it, chooses what the answer reads. Such a token no
     * longer computes what a prefill computes, so its pages are not offered to the prefix cache
     * ({@link #tokenChooses}); any other chunk, of one token or more, chooses as BOUND does.
     */
    QUERY("query");

    private final String label;

    Selection(String label) {
      this.label = label;
    }

    /** The name in parameters, metadata and the command line. */
    public String label() {
      return label;
    }

    /** Whether blocks are scored by their keys' bounds (BOUND and QUERY) rather than their means. */
    public boolean bounds() {
      return this != MEAN;
    }

    /** The selection called {@code name} (case-insensitive). */
    public static Selection named(String name) {
      for (Selection s : values()) {
        if (s.label.equalsIgnoreCase(name)) {
          return s;
        }
      }
      throw new IllegalArgumentException("unknown selection '" + name + "'; use mean, bound or query");
    }
  }

  /**
   * Caches keep key and query sums per this many tokens, so any block size that is a power of two
   * at least this large can be assembled from them, and a cache can be cut back to a multiple of it.
   */
  public static final int MIN_BLOCK_SIZE = 16;

  public enum Scheme {
    /** Every query reads every earlier key. */
    DENSE,
    /** Correlation-aware select-and-merge (arXiv 2410.04211), made causal: see {@link AttentionPlanner}. */
    SELECT_AND_MERGE
  }

  /** The positions RoPE gives queries and keys (keys are cached before RoPE, so any of these works). */
  public sealed interface Positions {}

  /** Each token at its index in the sequence. */
  public record Original() implements Positions {}

  /**
   * The keys a query group reads get consecutive positions in their original order, the group's
   * queries follow; no distance exceeds the gathered span, which must fit the trained window
   * (the select-and-merge paper's "positional encodings only on the selected tokens").
   */
  public record Reindexed() implements Positions {}

  /**
   * Self-Extend (arXiv 2401.01325): a key less than {@code window} tokens before the query keeps the
   * exact distance; farther keys use grouped positions, query {@code i/G + W − W/G} and key {@code j/G}
   * (integer division); both kinds of score share one softmax.
   *
   * @param groupSize G, at least 1 (1 = exact positions)
   * @param window W, the neighbour window, below the trained window
   */
  public record SelfExtend(int groupSize, int window) implements Positions {}

  /**
   * CRD NTK at inference: positions taken modulo {@code period} and the RoPE base NTK-scaled by
   * {@code ntkScale}, for models fine-tuned that way (the select-and-merge paper's recipe).
   */
  public record CrdNtk(int period, double ntkScale) implements Positions {}

  public AttentionConfig {
    if (scheme == null || positions == null || selection == null) {
      throw new IllegalArgumentException("attention scheme, positions and selection must be given");
    }
    if (blockSize < MIN_BLOCK_SIZE || Integer.bitCount(blockSize) != 1) {
      throw new IllegalArgumentException(
          "block_size must be a power of two >= " + MIN_BLOCK_SIZE + ", got " + blockSize);
    }
    requireAtLeast("top_k", topK, 1);
    requireAtLeast("merge", merge, 1);
    requireAtLeast("sink_blocks", sinkBlocks, 0);
    requireAtLeast("window_blocks", windowBlocks, 0);
    if (!(ntkScale >= 1) || Double.isInfinite(ntkScale)) {
      throw new IllegalArgumentException("ntk_scale must be a finite number >= 1, got " + ntkScale);
    }
    switch (positions) {
      case Original o -> {}
      case Reindexed r -> {
        if (scheme != Scheme.SELECT_AND_MERGE) {
          throw new IllegalArgumentException("re-indexed positions need scheme select-and-merge: under dense"
              + " attention every key is gathered, so re-indexing changes nothing");
        }
      }
      case SelfExtend se -> {
        requireAtLeast("self_extend.group_size (G)", se.groupSize(), 1);
        requireAtLeast("self_extend.window (W)", se.window(), 1);
      }
      case CrdNtk crd -> {
        requireAtLeast("crd_ntk.period", crd.period(), 1);
        if (!(crd.ntkScale() >= 1) || Double.isInfinite(crd.ntkScale())) {
          throw new IllegalArgumentException("crd_ntk.ntk_scale must be a finite number >= 1, got "
              + crd.ntkScale());
        }
        if (ntkScale != 1) {
          throw new IllegalArgumentException("ntk_scale must be 1 with crd_ntk positions, which carry their own"
              + " NTK scale (crd_ntk.ntk_scale)");
        }
      }
    }
  }

  private static void requireAtLeast(String name, int value, int min) {
    if (value < min) {
      throw new IllegalArgumentException(name + " must be >= " + min + ", got " + value);
    }
  }

  /**
   * Dense causal attention at original positions. Its block size sets the granularity of plans and
   * statistics; its other select-and-merge fields hold the suggested values and are not used.
   */
  public static AttentionConfig dense() {
    return new AttentionConfig(Scheme.DENSE, DEFAULT_BLOCK_SIZE, 64, 4, 1, 4, new Original(), 1);
  }

  /** Select-and-merge at original positions. */
  public static AttentionConfig selectAndMerge(int blockSize, int topK, int merge, int sinkBlocks,
      int windowBlocks) {
    return new AttentionConfig(Scheme.SELECT_AND_MERGE, blockSize, topK, merge, sinkBlocks, windowBlocks,
        new Original(), 1);
  }

  /** Tokens per block unless configured: the paper's choice. */
  public static final int DEFAULT_BLOCK_SIZE = 64;

  /**
   * Select-and-merge with blocks of 64, groups of 4, 1 sink and a window of 4, and as many chosen
   * blocks as keep the gathered span {@code (sinks + top_k + window + merge)·64} inside {@code
   * trainedWindow}, so that re-indexed positions never exceed it.
   */
  public static AttentionConfig selectAndMergeWithin(int trainedWindow) {
    return selectAndMergeWithin(trainedWindow, DEFAULT_BLOCK_SIZE);
  }

  /** As {@link #selectAndMergeWithin(int)} with blocks of {@code block} tokens. */
  public static AttentionConfig selectAndMergeWithin(int trainedWindow, int block) {
    int merge = 4, sinks = 1, window = 4;
    return selectAndMerge(block, Math.max(1, trainedWindow / block - sinks - window - merge), merge, sinks, window);
  }

  public AttentionConfig withPositions(Positions p) {
    return new AttentionConfig(scheme, blockSize, topK, merge, sinkBlocks, windowBlocks, p, ntkScale, selection);
  }

  public AttentionConfig withSelection(Selection s) {
    return new AttentionConfig(scheme, blockSize, topK, merge, sinkBlocks, windowBlocks, positions, ntkScale, s);
  }

  public AttentionConfig withNtkScale(double s) {
    return new AttentionConfig(scheme, blockSize, topK, merge, sinkBlocks, windowBlocks, positions, s, selection);
  }

  /**
   * Whether a chunk of the one token at {@code position} chooses blocks with its own query
   * ({@link Selection#QUERY}): select-and-merge with more candidates before the token's group than it
   * chooses. Otherwise every candidate is read, and the token computes what it would in any chunk.
   * The planner applies it to every chunk of one token; a sequence passes QUERY only for decode steps.
   */
  public boolean tokenChooses(int position) {
    if (scheme != Scheme.SELECT_AND_MERGE || selection != Selection.QUERY) {
      return false;
    }
    int windowStart = Math.max(0, position / blockSize / merge * merge - windowBlocks);
    return windowStart - Math.min(sinkBlocks, windowStart) > topK;
  }

  /**
   * Checks the parameters that depend on the model: Self-Extend's W and the re-indexed span must
   * stay below the window the model was trained on ({@code max_position_embeddings}).
   *
   * @return this configuration
   */
  public AttentionConfig validateFor(ModelConfig model) {
    int trained = model.maxPositionEmbeddings();
    if (positions instanceof SelfExtend se && se.window() >= trained) {
      throw new IllegalArgumentException("self_extend.window (W) must be below the model's trained window of "
          + trained + " tokens, got " + se.window());
    }
    if (positions instanceof Reindexed) {
      long span = gatheredBlocks() * blockSize;
      if (span > trained) {
        throw new IllegalArgumentException("re-indexed positions span (sink_blocks + top_k + window_blocks +"
            + " merge) · block_size = " + span + " tokens, beyond the model's trained window of " + trained);
      }
    }
    return this;
  }

  /** The most blocks a select-and-merge query group reads. */
  public long gatheredBlocks() {
    return (long) sinkBlocks + topK + windowBlocks + merge;
  }

  /**
   * The factor the RoPE base is multiplied by: NTK-aware scaling {@code s^(d/(d−2))} (the form of
   * transformers' dynamic NTK, with a fixed s), from CRD NTK's scale or the static {@code ntkScale}.
   */
  public double ropeBaseFactor(int headDim) {
    double s = positions instanceof CrdNtk crd ? crd.ntkScale() : ntkScale;
    return s == 1 ? 1 : Math.pow(s, headDim / (headDim - 2.0));
  }
}
