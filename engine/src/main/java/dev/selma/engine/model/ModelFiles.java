package dev.selma.engine.model;

import java.nio.file.Path;

/**
 * An opened model: its configuration and its weights by role, memory-mapped from a GGUF file or a
 * Hugging Face folder. Closing it unmaps the weights. Obtained from {@link ModelLoader#open(Path)}.
 */
public final class ModelFiles implements AutoCloseable {
  /** Where the model came from. */
  public enum Format {
    /** One {@code .gguf} file (weights, hyper-parameters, tokenizer, chat template). */
    GGUF,
    /** A Hugging Face folder: {@code config.json}, safetensors weights, tokenizer files. */
    HF
  }

  private final Path path;
  private final Format format;
  private final ModelConfig config;
  private final LlamaWeights weights;
  private final GgufMetadata ggufMetadata;
  private final Runnable unmap;

  ModelFiles(Path path, Format format, ModelConfig config, LlamaWeights weights, GgufMetadata ggufMetadata,
      Runnable unmap) {
    this.path = path;
    this.format = format;
    this.config = config;
    this.weights = weights;
    this.ggufMetadata = ggufMetadata;
    this.unmap = unmap;
  }

  /** The {@code .gguf} file or the Hugging Face folder. */
  public Path path() {
    return path;
  }

  public Format format() {
    return format;
  }

  public ModelConfig config() {
    return config;
  }

  public LlamaWeights weights() {
    return weights;
  }

  /** The GGUF metadata (tokenizer, chat template, …); null for Hugging Face folders. */
  public GgufMetadata ggufMetadata() {
    return ggufMetadata;
  }

  @Override
  public void close() {
    unmap.run();
  }
}
