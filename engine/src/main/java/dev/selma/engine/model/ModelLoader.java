package dev.selma.engine.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Opens a model from a {@code .gguf} file or a Hugging Face folder and maps its tensors to roles.
 *
 * <p>Tensor names by role (N = layer):
 *
 * <pre>
 *   role            GGUF                      Hugging Face
 *   embedding       token_embd.weight         model.embed_tokens.weight
 *   attention norm  blk.N.attn_norm.weight    model.layers.N.input_layernorm.weight
 *   q, k, v, o      blk.N.attn_{q,k,v,output}.weight   model.layers.N.self_attn.{q,k,v,o}_proj.weight
 *   q, k, v bias    blk.N.attn_{q,k,v}.bias   model.layers.N.self_attn.{q,k,v}_proj.bias
 *   MLP norm        blk.N.ffn_norm.weight     model.layers.N.post_attention_layernorm.weight
 *   gate, up, down  blk.N.ffn_{gate,up,down}.weight    model.layers.N.mlp.{gate,up,down}_proj.weight
 *   final norm      output_norm.weight        model.norm.weight
 *   output          output.weight             lm_head.weight
 *   rope factors    rope_freqs.weight         (none)
 * </pre>
 *
 * Every tensor's shape is checked against the configuration before the model is handed out, and
 * vectors (norms, biases, rope factors) must be F32, F16 or BF16, so that a model whose files
 * disagree with each other fails here with a {@link ModelFormatException} naming the tensor, rather
 * than later inside a kernel.
 *
 * <p>GGUF hyper-parameters ({@link #ggufConfig}) come from {@code general.architecture} (llama, which
 * includes Mistral, or qwen2) and the {@code {arch}.*} keys written by llama.cpp's converter. llama
 * GGUFs hold q/k rows permuted for interleaved RoPE ({@link ModelConfig.RopeStyle#INTERLEAVED});
 * qwen2 GGUFs are not permuted ({@link ModelConfig.RopeStyle#HALF}).
 */
public final class ModelLoader {
  private ModelLoader() {}

  /** A {@code .gguf} file, or a Hugging Face folder ({@code config.json} + safetensors). */
  public static ModelFiles open(Path path) throws IOException {
    if (Files.isDirectory(path)) {
      return openHf(path);
    }
    if (path.getFileName() != null && path.getFileName().toString().equals(HfConfig.FILE_NAME)) {
      return openHf(path.toAbsolutePath().getParent());
    }
    return openGguf(path);
  }

  private static ModelFiles openGguf(Path path) throws IOException {
    GgufFile gguf = GgufFile.open(path);
    try {
      ModelConfig config = ggufConfig(gguf);
      LlamaWeights weights = new Roles(path, gguf.tensors(), config).gguf();
      return new ModelFiles(path, ModelFiles.Format.GGUF, config, weights, gguf.metadata(), gguf::close);
    } catch (IOException | RuntimeException | Error e) {
      gguf.close();
      throw e;
    }
  }

  private static ModelFiles openHf(Path folder) throws IOException {
    ModelConfig config = HfConfig.read(folder.resolve(HfConfig.FILE_NAME));
    Safetensors st = Safetensors.open(folder);
    try {
      LlamaWeights weights = new Roles(folder, st.tensors(), config).hf();
      return new ModelFiles(folder, ModelFiles.Format.HF, config, weights, null, st::close);
    } catch (IOException | RuntimeException | Error e) {
      st.close();
      throw e;
    }
  }

  /** The hyper-parameters of a GGUF file of architecture llama or qwen2. */
  public static ModelConfig ggufConfig(GgufFile gguf) throws ModelFormatException {
    GgufMetadata m = gguf.metadata();
    String arch = m.getString("general.architecture");
    if (!arch.equals("llama") && !arch.equals("qwen2")) {
      throw new ModelFormatException(gguf.path(), "general.architecture", "unsupported architecture " + arch
          + "; Selma supports llama (incl. Mistral) and qwen2");
    }
    Tensor embedding = gguf.tensor("token_embd.weight");
    if (embedding.rank() != 2) {
      throw new ModelFormatException(gguf.path(), "tensor 'token_embd.weight'", "expected 2 dimensions but found "
          + Arrays.toString(embedding.shape()));
    }
    int hidden = m.getInt(arch + ".embedding_length");
    int heads = m.getInt(arch + ".attention.head_count");
    if (heads <= 0) {
      throw new ModelFormatException(gguf.path(), arch + ".attention.head_count", "must be > 0");
    }
    int headDim = m.getInt(arch + ".attention.key_length", hidden / heads);
    if (m.contains(arch + ".attention.value_length") && m.getInt(arch + ".attention.value_length") != headDim) {
      throw new ModelFormatException(gguf.path(), arch + ".attention.value_length",
          "differs from the key length " + headDim + "; Selma needs equal key and value head sizes");
    }
    if (m.contains(arch + ".rope.dimension_count") && m.getInt(arch + ".rope.dimension_count") != headDim) {
      throw new ModelFormatException(gguf.path(), arch + ".rope.dimension_count",
          "partial rotary embeddings are not supported (rotary dimensions must equal the head size " + headDim + ")");
    }
    Map<String, Tensor> tensors = gguf.tensors();
    try {
      return new ModelConfig(
          arch,
          Math.toIntExact(embedding.dim(0)),
          hidden,
          m.getInt(arch + ".feed_forward_length"),
          m.getInt(arch + ".block_count"),
          heads,
          m.getInt(arch + ".attention.head_count_kv", heads),
          headDim,
          m.getDouble(arch + ".attention.layer_norm_rms_epsilon"),
          m.getDouble(arch + ".rope.freq_base", 10000),
          ggufRopeScaling(gguf, arch),
          m.getInt(arch + ".context_length"),
          arch.equals("qwen2") || tensors.containsKey("blk.0.attn_q.bias"),
          !tensors.containsKey("output.weight"),
          arch.equals("llama") ? ModelConfig.RopeStyle.INTERLEAVED : ModelConfig.RopeStyle.HALF);
    } catch (IllegalArgumentException | ArithmeticException e) {
      throw new ModelFormatException(gguf.path(), null, e.getMessage(), e);
    }
  }

  private static RopeScaling ggufRopeScaling(GgufFile gguf, String arch) throws ModelFormatException {
    GgufMetadata m = gguf.metadata();
    String prefix = arch + ".rope.scaling.";
    String type = m.getString(prefix + "type", null);
    if (type == null && m.contains(arch + ".rope.scale_linear")) {
      // Older converters wrote linear scaling under this key only.
      type = "linear";
    }
    if (type == null || type.equals("none")) {
      return RopeScaling.NONE;
    }
    try {
      return switch (type) {
        case "linear" -> RopeScaling.linear(m.contains(prefix + "factor") ? m.getDouble(prefix + "factor")
            : m.getDouble(arch + ".rope.scale_linear"));
        case "yarn" -> RopeScaling.yarn(m.getDouble(prefix + "factor"),
            m.getInt(prefix + "original_context_length"),
            m.getDouble(prefix + "yarn_beta_fast", 32), m.getDouble(prefix + "yarn_beta_slow", 1), Double.NaN);
        default -> throw new ModelFormatException(gguf.path(), prefix + "type", "unsupported rope scaling type "
            + type + "; Selma reads none, linear, yarn");
      };
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(gguf.path(), prefix + "type", e.getMessage(), e);
    }
  }

  /** Looks tensors up by role and checks their shapes. */
  private record Roles(Path file, Map<String, Tensor> tensors, ModelConfig c) {

    LlamaWeights gguf() throws ModelFormatException {
      Tensor embedding = matrix("token_embd.weight", c.vocabSize(), c.hiddenSize());
      List<LlamaWeights.Layer> layers = new ArrayList<>();
      for (int i = 0; i < c.numLayers(); i++) {
        String p = "blk." + i + ".";
        layers.add(layer(p + "attn_norm.weight", p + "attn_q.", p + "attn_k.", p + "attn_v.",
            p + "attn_output.weight", p + "ffn_norm.weight", p + "ffn_gate.weight", p + "ffn_up.weight",
            p + "ffn_down.weight"));
      }
      Tensor output = c.tieWordEmbeddings() ? embedding : matrix("output.weight", c.vocabSize(), c.hiddenSize());
      Tensor ropeFreqs = tensors.containsKey("rope_freqs.weight") ? vector("rope_freqs.weight", c.headDim() / 2) : null;
      return new LlamaWeights(embedding, layers, vector("output_norm.weight", c.hiddenSize()), output, ropeFreqs);
    }

    LlamaWeights hf() throws ModelFormatException {
      Tensor embedding = matrix("model.embed_tokens.weight", c.vocabSize(), c.hiddenSize());
      List<LlamaWeights.Layer> layers = new ArrayList<>();
      for (int i = 0; i < c.numLayers(); i++) {
        String p = "model.layers." + i + ".";
        layers.add(layer(p + "input_layernorm.weight", p + "self_attn.q_proj.", p + "self_attn.k_proj.",
            p + "self_attn.v_proj.", p + "self_attn.o_proj.weight", p + "post_attention_layernorm.weight",
            p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight"));
      }
      Tensor output = c.tieWordEmbeddings() ? embedding : matrix("lm_head.weight", c.vocabSize(), c.hiddenSize());
      return new LlamaWeights(embedding, layers, vector("model.norm.weight", c.hiddenSize()), output, null);
    }

    /** {@code q}, {@code k}, {@code v} are prefixes completed by {@code weight} and {@code bias}. */
    private LlamaWeights.Layer layer(String attnNorm, String q, String k, String v, String o, String ffnNorm,
        String gate, String up, String down) throws ModelFormatException {
      int hidden = c.hiddenSize();
      boolean bias = c.attentionBias();
      return new LlamaWeights.Layer(
          vector(attnNorm, hidden),
          matrix(q + "weight", c.qDim(), hidden),
          matrix(k + "weight", c.kvDim(), hidden),
          matrix(v + "weight", c.kvDim(), hidden),
          matrix(o, hidden, c.qDim()),
          bias ? vector(q + "bias", c.qDim()) : null,
          bias ? vector(k + "bias", c.kvDim()) : null,
          bias ? vector(v + "bias", c.kvDim()) : null,
          vector(ffnNorm, hidden),
          matrix(gate, c.intermediateSize(), hidden),
          matrix(up, c.intermediateSize(), hidden),
          matrix(down, hidden, c.intermediateSize()));
    }

    private Tensor matrix(String name, long rows, long cols) throws ModelFormatException {
      return check(name, new long[] {rows, cols});
    }

    private Tensor vector(String name, long length) throws ModelFormatException {
      Tensor t = check(name, new long[] {length});
      if (t.type().isQuantized()) {
        throw new ModelFormatException(file, "tensor '" + name + "'", "type " + t.type()
            + " is not allowed for a vector (F32, F16 or BF16)");
      }
      return t;
    }

    private Tensor check(String name, long[] expected) throws ModelFormatException {
      Tensor t = tensors.get(name);
      if (t == null) {
        throw new ModelFormatException(file, "tensor '" + name + "'", "missing tensor (expected shape "
            + Arrays.toString(expected) + ")");
      }
      if (!Arrays.equals(t.shape(), expected)) {
        throw new ModelFormatException(file, "tensor '" + name + "'", "expected shape " + Arrays.toString(expected)
            + " but found " + Arrays.toString(t.shape()));
      }
      return t;
    }
  }
}
