package dev.selma.engine.llama;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionStats;
import dev.selma.engine.kv.KvCache;
import java.util.Arrays;

/**
 * One token sequence being processed by a {@link Llama}: its KV cache, its activation buffers and the
 * tokens it holds. Not thread-safe; different sequences may run concurrently.
 */
public final class Sequence implements AutoCloseable {
  private final Llama model;
  final KvCache cache;
  final Llama.Workspace workspace;
  private final int maxChunk;
  private int[] tokens = new int[64];
  AttentionConfig attention = AttentionConfig.dense();
  AttentionStats attentionStats;

  Sequence(Llama model, KvCache cache, int maxChunk) {
    if (maxChunk < 1) {
      throw new IllegalArgumentException("maxChunk must be >= 1, got " + maxChunk);
    }
    this.model = model;
    this.cache = cache;
    this.maxChunk = maxChunk;
    this.workspace = new Llama.Workspace(model.backend(), model.config(), maxChunk);
    this.attentionStats = new AttentionStats(model.config().numLayers(), attention.blockSize());
  }

  /**
   * Sets how the following tokens attend (a request's choice; dense until set), validated against
   * the model, and starts fresh attention statistics. Tokens already held keep their keys: a cached
   * prefix serves any configuration.
   */
  public void attention(AttentionConfig config) {
    attention = config.validateFor(model.config());
    attentionStats = new AttentionStats(model.config().numLayers(), config.blockSize());
  }

  public AttentionConfig attention() {
    return attention;
  }

  /** Which key blocks select-and-merge chose since the configuration was last set. */
  public AttentionStats attentionStats() {
    return attentionStats;
  }

  /** Tokens in the sequence. */
  public int length() {
    return cache.length();
  }

  public int capacity() {
    return cache.capacity();
  }

  public int maxChunk() {
    return maxChunk;
  }

  public KvCache cache() {
    return cache;
  }

  /** The tokens held, in order. */
  public int[] tokens() {
    return Arrays.copyOf(tokens, length());
  }

  /**
   * Appends tokens (in chunks of at most {@link #maxChunk()}) and returns the logits of the last one.
   */
  public float[] append(int[] newTokens) {
    return appendAll(newTokens, false)[0];
  }

  /** Appends tokens and returns the logits of every one of them (for tests and scoring). */
  public float[][] appendAllLogits(int[] newTokens) {
    return appendAll(newTokens, true);
  }

  private float[][] appendAll(int[] newTokens, boolean all) {
    if (newTokens.length == 0) {
      throw new IllegalArgumentException("no tokens to append");
    }
    if (length() + newTokens.length > capacity()) {
      throw new IllegalArgumentException("sequence of " + (length() + newTokens.length)
          + " tokens exceeds the capacity of " + capacity());
    }
    int vocab = model.config().vocabSize();
    float[][] out = new float[all ? newTokens.length : 1][vocab];
    for (int from = 0; from < newTokens.length; from += maxChunk) {
      int to = Math.min(newTokens.length, from + maxChunk);
      int[] chunk = Arrays.copyOfRange(newTokens, from, to);
      int start = length();
      model.forwardChunk(this, chunk);
      record(start, chunk);
      if (all) {
        float[][] rows = Arrays.copyOfRange(out, from, to);
        model.logits(workspace, 0, chunk.length, rows);
      } else if (to == newTokens.length) {
        model.logits(workspace, chunk.length - 1, chunk.length, out);
      }
    }
    return out;
  }

  private void record(int start, int[] chunk) {
    if (start + chunk.length > tokens.length) {
      tokens = Arrays.copyOf(tokens, Math.max(tokens.length * 2, start + chunk.length));
    }
    System.arraycopy(chunk, 0, tokens, start, chunk.length);
  }

  /** Forgets the tokens from {@code length} on, so that a different continuation can be run. */
  public void truncate(int length) {
    int kept = cache.truncate(length);
    if (kept < length) {
      // The cache cut at a block-sum boundary: recompute the rest from the tokens.
      int[] rest = Arrays.copyOfRange(tokens, kept, length);
      for (int from = 0; from < rest.length; from += maxChunk) {
        model.forwardChunk(this, Arrays.copyOfRange(rest, from, Math.min(rest.length, from + maxChunk)));
      }
    }
  }

  @Override
  public void close() {
    cache.close();
  }
}
