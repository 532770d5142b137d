package dev.selma.langchain4j;

import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.GgufWriter;
import dev.selma.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Tiny random-weight Llama models with real tokenizers and chat templates, written once per build to
 * {@code target/test-models}. Their answers are gibberish: tests check mapping and plumbing, not
 * meaning.
 */
final class TestModels {
  static final int HIDDEN = 64;
  static final int HEADS = 4;
  static final int KV_HEADS = 2;
  static final int LAYERS = 2;
  static final int FFN = 128;
  static final int CONTEXT = 2048;

  /** Llama 3.1 vocabulary with Meta's Llama 3.1 Instruct template, which renders tools. */
  static final String LLAMA31_TOOLS = "llama31-tools";
  /** Qwen3 vocabulary with the Qwen2.5 template (tools in {@code <tool_call>} tags). */
  static final String QWEN_TOOLS = "qwen-tools";
  /** Mistral 32K vocabulary with the Mistral 7B Instruct v0.2 template, which has no tools. */
  static final String MISTRAL_NO_TOOLS = "mistral";

  private TestModels() {}

  static Path repoRoot() {
    return Path.of(System.getProperty("selma.repo.root", "..")).toAbsolutePath().normalize();
  }

  static synchronized Path path(String name) {
    Path dir = Path.of(System.getProperty("selma.test.models", "target/test-models"));
    // The version in the name makes a changed recipe write new files instead of reusing old ones.
    Path file = dir.resolve(name + "-v1.gguf");
    if (Files.isRegularFile(file)) {
      return file;
    }
    try {
      Files.createDirectories(dir);
      switch (name) {
        case LLAMA31_TOOLS -> write(file, "llama3_1", "llama-3.1-instruct.jinja", 1);
        case QWEN_TOOLS -> write(file, "qwen3", "qwen2.5.jinja", 2);
        case MISTRAL_NO_TOOLS -> write(file, "mistral", "mistral-7b-instruct-v0.2.jinja", 3);
        default -> throw new IllegalArgumentException(name);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  static Engine load(String name, int contextLength) throws IOException {
    return Engine.load(EngineOptions.of(path(name)).withBackend(EngineOptions.BackendChoice.CPU).withThreads(1)
        .withContextLength(contextLength));
  }

  private static void write(Path file, String vocabulary, String template, long seed) throws IOException {
    Path vocab = Path.of(System.getProperty("selma.vocab.dir", repoRoot().resolve(".cache/vocab").toString()))
        .resolve(vocabulary).resolve("tokenizer.json");
    if (!Files.isRegularFile(vocab)) {
      throw new IOException(vocab + " is missing: tools/fetch-vocabularies.sh fetches it (the Maven build runs it)");
    }
    Tokenizer tokenizer = Tokenizer.fromHuggingFace(vocab);
    String chatTemplate = Files.readString(repoRoot().resolve("engine/src/test/resources/template").resolve(template));
    int vocabSize = tokenizer.vocabSize();
    GgufWriter g = new GgufWriter();
    g.putString("general.architecture", "llama");
    g.putString("general.name", "selma-test-" + file.getFileName().toString().replace("-v1.gguf", ""));
    g.putUint32("llama.vocab_size", vocabSize);
    g.putUint32("llama.context_length", CONTEXT);
    g.putUint32("llama.embedding_length", HIDDEN);
    g.putUint32("llama.block_count", LAYERS);
    g.putUint32("llama.feed_forward_length", FFN);
    g.putUint32("llama.attention.head_count", HEADS);
    g.putUint32("llama.attention.head_count_kv", KV_HEADS);
    g.putFloat32("llama.rope.freq_base", 10000);
    g.putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    g.putAll(tokenizer.toGgufMetadata());
    g.putString("tokenizer.chat_template", chatTemplate);
    SplittableRandom r = new SplittableRandom(seed);
    int headDim = HIDDEN / HEADS;
    // Tied embeddings (no output.weight): the biggest tensor is stored once, as Q8_0.
    g.addTensor("token_embd.weight", GgmlType.Q8_0, new long[] {vocabSize, HIDDEN}, gaussian(r, vocabSize * HIDDEN, 0.5));
    g.addTensor("output_norm.weight", GgmlType.F32, new long[] {HIDDEN}, norm(r, HIDDEN));
    for (int l = 0; l < LAYERS; l++) {
      String p = "blk." + l + ".";
      g.addTensor(p + "attn_norm.weight", GgmlType.F32, new long[] {HIDDEN}, norm(r, HIDDEN));
      g.addTensor(p + "attn_q.weight", GgmlType.F32, new long[] {HIDDEN, HIDDEN}, gaussian(r, HIDDEN * HIDDEN, 0.3));
      g.addTensor(p + "attn_k.weight", GgmlType.F32, new long[] {KV_HEADS * headDim, HIDDEN},
          gaussian(r, KV_HEADS * headDim * HIDDEN, 0.3));
      g.addTensor(p + "attn_v.weight", GgmlType.F32, new long[] {KV_HEADS * headDim, HIDDEN},
          gaussian(r, KV_HEADS * headDim * HIDDEN, 0.3));
      g.addTensor(p + "attn_output.weight", GgmlType.F32, new long[] {HIDDEN, HIDDEN}, gaussian(r, HIDDEN * HIDDEN, 0.3));
      g.addTensor(p + "ffn_norm.weight", GgmlType.F32, new long[] {HIDDEN}, norm(r, HIDDEN));
      g.addTensor(p + "ffn_gate.weight", GgmlType.F32, new long[] {FFN, HIDDEN}, gaussian(r, FFN * HIDDEN, 0.3));
      g.addTensor(p + "ffn_up.weight", GgmlType.F32, new long[] {FFN, HIDDEN}, gaussian(r, FFN * HIDDEN, 0.3));
      g.addTensor(p + "ffn_down.weight", GgmlType.F32, new long[] {HIDDEN, FFN}, gaussian(r, HIDDEN * FFN, 0.3));
    }
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    g.write(tmp);
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
        java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  private static float[] gaussian(SplittableRandom r, int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (r.nextGaussian() * scale);
    }
    return v;
  }

  private static float[] norm(SplittableRandom r, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (1 + r.nextGaussian() * 0.2);
    }
    return v;
  }
}
