package dev.selma.engine;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.KvPrecision;
import java.nio.file.Path;
import java.util.Objects;

/**
 * How to load and run a model.
 *
 * @param model a GGUF file or a Hugging Face folder
 * @param backend which backend runs the model
 * @param threads CPU threads (0 = every processor)
 * @param contextLength the most tokens one sequence holds, prompt and answer together (0 = the
 *     model's configured context length)
 * @param prefillChunk prompt tokens processed per forward step; bounds activation memory (0 = the
 *     backend's: {@link #GPU_PREFILL_CHUNK} on a GPU, {@link #CPU_PREFILL_CHUNK} on the CPU)
 * @param attention the attention scheme and positions of every request; null follows the model's
 *     profile ({@link dev.selma.engine.attention.AttentionProfile}: dense within its trained window)
 * @param cache the prefix KV cache shared by requests ({@link CacheOptions#defaults()} when null)
 * @param kvPrecision how KV pages store keys and values ({@link KvPrecision#AUTO} when null)
 */
public record EngineOptions(Path model, BackendChoice backend, int threads, int contextLength, int prefillChunk,
    AttentionConfig attention, CacheOptions cache, KvPrecision kvPrecision) {

  /** Which backend runs the model. */
  public enum BackendChoice {
    /** CUDA when a usable GPU is present, else the CPU. */
    AUTO,
    CPU,
    CUDA
  }

  /**
   * Prompt tokens a forward step takes on a GPU by default: Llama-3-8B shapes on an H100 prefill 32K
   * tokens in 2.37 s in chunks of 512, 1.78 s of 2,048, 1.76 s of 4,096 and 1.74 s of 8,192, which holds
   * 0.9 GB more (docs/benchmarks.md).
   */
  public static final int GPU_PREFILL_CHUNK = 4096;
  /** The same on the CPU, where a chunk's activations should stay near the caches. */
  public static final int CPU_PREFILL_CHUNK = 512;

  public EngineOptions {
    Objects.requireNonNull(model, "model");
    backend = backend == null ? BackendChoice.AUTO : backend;
    if (threads < 0) {
      throw new IllegalArgumentException("threads must be >= 0 (0 = all processors), got " + threads);
    }
    if (contextLength < 0) {
      throw new IllegalArgumentException("context length must be >= 0 (0 = the model's), got " + contextLength);
    }
    if (prefillChunk < 0) {
      throw new IllegalArgumentException("prefill chunk must be >= 0 (0 = the backend's default), got " + prefillChunk);
    }
    cache = cache == null ? CacheOptions.defaults() : cache;
    kvPrecision = kvPrecision == null ? KvPrecision.AUTO : kvPrecision;
  }

  /** Options with the default prefix cache. */
  public EngineOptions(Path model, BackendChoice backend, int threads, int contextLength, int prefillChunk,
      AttentionConfig attention) {
    this(model, backend, threads, contextLength, prefillChunk, attention, null, null);
  }

  /**
   * Defaults: automatic backend, all processors, the model's context length, the backend's prefill chunk,
   * the default prefix cache.
   */
  public static EngineOptions of(Path model) {
    return new EngineOptions(model, BackendChoice.AUTO, 0, 0, 0, null, null, null);
  }

  public EngineOptions withBackend(BackendChoice b) {
    return new EngineOptions(model, b, threads, contextLength, prefillChunk, attention, cache, kvPrecision);
  }

  public EngineOptions withThreads(int t) {
    return new EngineOptions(model, backend, t, contextLength, prefillChunk, attention, cache, kvPrecision);
  }

  public EngineOptions withContextLength(int n) {
    return new EngineOptions(model, backend, threads, n, prefillChunk, attention, cache, kvPrecision);
  }

  public EngineOptions withAttention(AttentionConfig a) {
    return new EngineOptions(model, backend, threads, contextLength, prefillChunk, a, cache, kvPrecision);
  }

  public EngineOptions withPrefillChunk(int n) {
    return new EngineOptions(model, backend, threads, contextLength, n, attention, cache, kvPrecision);
  }

  public EngineOptions withCache(CacheOptions c) {
    return new EngineOptions(model, backend, threads, contextLength, prefillChunk, attention, c, kvPrecision);
  }

  public EngineOptions withKvPrecision(KvPrecision p) {
    return new EngineOptions(model, backend, threads, contextLength, prefillChunk, attention, cache, p);
  }
}
