package dev.selma.testmodels;

import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.GgufWriter;
import dev.selma.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Writes tiny random-weight Llama GGUF files with the real Mistral 32K tokenizer and a Mistral-style chat
 * template embedded, for tests that need a whole model file: what they generate is gibberish, but
 * loading, templating, tokenizing, packing and generating run exactly as with a trained model.
 * The vocabulary comes from {@code <repo>/.cache/vocab/mistral} (fetched by the engine build), located
 * through the system property {@code selma.vocab.dir}.
 */
public final class TestModels {
  /** A Mistral-style template with a system turn. */
  public static final String CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}"
      + "{% if m['role'] == 'system' %}[SYS] {{ m['content'] }} [/SYS]"
      + "{% elif m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
      + "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

  private TestModels() {}

  /** The Mistral vocabulary's folder. */
  public static Path mistralVocabulary() {
    String dir = System.getProperty("selma.vocab.dir");
    if (dir == null) {
      throw new IllegalStateException("system property selma.vocab.dir is not set (the build sets it to"
          + " <repo>/.cache/vocab, which the engine module's build fills)");
    }
    Path p = Path.of(dir, "mistral", "tokenizer.json");
    if (!Files.isRegularFile(p)) {
      throw new IllegalStateException(p + " is missing: build the engine module first (it fetches the vocabularies)");
    }
    return p;
  }

  /**
   * Writes a random model: 2 layers, hidden 64, 4 query and 2 key/value heads, tied embeddings, a
   * context of {@code contextLength} tokens, named {@code name}.
   */
  public static Path write(Path file, String name, int contextLength, long seed) {
    return write(file, name, contextLength, seed, 64, 2, 4, 2, 128, GgmlType.F32);
  }

  /**
   * Writes a random model of the given shape, matrices stored as {@code type} (F32 or a type whose
   * block size divides {@code hidden} and {@code ffn}), norms as F32.
   */
  public static Path write(Path file, String name, int contextLength, long seed, int hidden, int layers, int heads,
      int kvHeads, int ffn, GgmlType type) {
    try {
      Tokenizer tokenizer = Tokenizer.fromHuggingFace(mistralVocabulary());
      int vocab = tokenizer.vocabSize();
      int headDim = hidden / heads;
      GgufWriter g = new GgufWriter();
      g.putString("general.architecture", "llama");
      g.putString("general.name", name);
      g.putUint32("general.file_type", type == GgmlType.F32 ? 0 : type == GgmlType.Q8_0 ? 7 : 1);
      g.putUint32("llama.vocab_size", vocab);
      g.putUint32("llama.context_length", contextLength);
      g.putUint32("llama.embedding_length", hidden);
      g.putUint32("llama.block_count", layers);
      g.putUint32("llama.feed_forward_length", ffn);
      g.putUint32("llama.attention.head_count", heads);
      g.putUint32("llama.attention.head_count_kv", kvHeads);
      g.putFloat32("llama.rope.freq_base", 10000f);
      g.putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
      g.putUint32("llama.attention.key_length", headDim);
      g.putUint32("llama.attention.value_length", headDim);
      g.putUint32("llama.rope.dimension_count", headDim);
      g.putAll(tokenizer.toGgufMetadata());
      g.putString("tokenizer.chat_template", CHAT_TEMPLATE);
      SplittableRandom r = new SplittableRandom(seed);
      matrix(g, r, "token_embd.weight", vocab, hidden, type);
      norm(g, r, "output_norm.weight", hidden);
      for (int l = 0; l < layers; l++) {
        String p = "blk." + l + ".";
        norm(g, r, p + "attn_norm.weight", hidden);
        matrix(g, r, p + "attn_q.weight", heads * headDim, hidden, type);
        matrix(g, r, p + "attn_k.weight", kvHeads * headDim, hidden, type);
        matrix(g, r, p + "attn_v.weight", kvHeads * headDim, hidden, type);
        matrix(g, r, p + "attn_output.weight", hidden, heads * headDim, type);
        norm(g, r, p + "ffn_norm.weight", hidden);
        matrix(g, r, p + "ffn_gate.weight", ffn, hidden, type);
        matrix(g, r, p + "ffn_up.weight", ffn, hidden, type);
        matrix(g, r, p + "ffn_down.weight", hidden, ffn, type);
      }
      Files.createDirectories(file.toAbsolutePath().getParent());
      g.write(file);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void matrix(GgufWriter g, SplittableRandom r, String name, int rows, int cols, GgmlType type) {
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (r.nextGaussian() * 0.3);
    }
    g.addTensor(name, type, new long[] {rows, cols}, v);
  }

  private static void norm(GgufWriter g, SplittableRandom r, String name, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (1 + r.nextGaussian() * 0.2);
    }
    g.addTensor(name, GgmlType.F32, new long[] {n}, v);
  }
}
