package dev.selma.engine.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A tiny random Hugging Face model folder ({@code config.json} + safetensors), written the way
 * transformers saves one. 4 query heads and 2 key/value heads of 64, so that every GGUF type (Q4_K and
 * Q6_K need rows of 256) can store it.
 *
 * @param architecture {@code LlamaForCausalLM}, {@code MistralForCausalLM} or {@code Qwen2ForCausalLM}
 * @param ropeScaling JSON of {@code rope_scaling}, or null
 * @param tie {@code tie_word_embeddings}
 * @param attentionBias {@code attention_bias} (Qwen2 has biases regardless)
 * @param dtype F32, F16 or BF16
 * @param shards 1 for {@code model.safetensors}, more for an index and shards
 */
record TinyHfModel(String architecture, String ropeScaling, boolean tie, boolean attentionBias, String dtype,
    int shards, int hidden, int intermediate) {
  static final int HEADS = 4;
  static final int KV_HEADS = 2;
  static final int LAYERS = 2;
  static final int VOCAB = 64;
  private static final ObjectMapper JSON = new ObjectMapper();

  static TinyHfModel llama() {
    return new TinyHfModel("LlamaForCausalLM", null, false, false, "BF16", 1, 256, 512);
  }

  static TinyHfModel qwen2() {
    return new TinyHfModel("Qwen2ForCausalLM", null, true, true, "BF16", 1, 256, 512);
  }

  TinyHfModel withRopeScaling(String json) {
    return new TinyHfModel(architecture, json, tie, attentionBias, dtype, shards, hidden, intermediate);
  }

  TinyHfModel withShards(int n) {
    return new TinyHfModel(architecture, ropeScaling, tie, attentionBias, dtype, n, hidden, intermediate);
  }

  TinyHfModel withDtype(String d) {
    return new TinyHfModel(architecture, ropeScaling, tie, attentionBias, d, shards, hidden, intermediate);
  }

  TinyHfModel withSizes(int h, int i) {
    return new TinyHfModel(architecture, ropeScaling, tie, attentionBias, dtype, shards, h, i);
  }

  boolean hasBias() {
    return attentionBias || architecture.equals("Qwen2ForCausalLM");
  }

  String configJson() throws IOException {
    ObjectNode c = JSON.createObjectNode();
    c.putArray("architectures").add(architecture);
    c.put("model_type", switch (architecture) {
      case "MistralForCausalLM" -> "mistral";
      case "Qwen2ForCausalLM" -> "qwen2";
      default -> "llama";
    });
    c.put("vocab_size", VOCAB);
    c.put("hidden_size", hidden);
    c.put("intermediate_size", intermediate);
    c.put("num_hidden_layers", LAYERS);
    c.put("num_attention_heads", HEADS);
    c.put("num_key_value_heads", KV_HEADS);
    c.put("hidden_act", "silu");
    c.put("rms_norm_eps", 1e-5);
    c.put("rope_theta", 500000.0);
    c.put("max_position_embeddings", 4096);
    c.put("tie_word_embeddings", tie);
    if (!architecture.equals("Qwen2ForCausalLM")) {
      c.put("attention_bias", attentionBias);
    }
    if (ropeScaling != null) {
      c.set("rope_scaling", JSON.readTree(ropeScaling));
    }
    c.put("torch_dtype", dtype.equals("BF16") ? "bfloat16" : dtype.equals("F16") ? "float16" : "float32");
    return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(c);
  }

  /** Tensor names and shapes in the order transformers saves them. */
  Map<String, long[]> shapes() {
    int qDim = HEADS * (hidden / HEADS);
    int kvDim = KV_HEADS * (hidden / HEADS);
    Map<String, long[]> s = new LinkedHashMap<>();
    s.put("model.embed_tokens.weight", new long[] {VOCAB, hidden});
    for (int i = 0; i < LAYERS; i++) {
      String p = "model.layers." + i + ".";
      s.put(p + "input_layernorm.weight", new long[] {hidden});
      s.put(p + "self_attn.q_proj.weight", new long[] {qDim, hidden});
      s.put(p + "self_attn.k_proj.weight", new long[] {kvDim, hidden});
      s.put(p + "self_attn.v_proj.weight", new long[] {kvDim, hidden});
      if (hasBias()) {
        s.put(p + "self_attn.q_proj.bias", new long[] {qDim});
        s.put(p + "self_attn.k_proj.bias", new long[] {kvDim});
        s.put(p + "self_attn.v_proj.bias", new long[] {kvDim});
      }
      s.put(p + "self_attn.o_proj.weight", new long[] {hidden, qDim});
      s.put(p + "post_attention_layernorm.weight", new long[] {hidden});
      s.put(p + "mlp.gate_proj.weight", new long[] {intermediate, hidden});
      s.put(p + "mlp.up_proj.weight", new long[] {intermediate, hidden});
      s.put(p + "mlp.down_proj.weight", new long[] {hidden, intermediate});
    }
    s.put("model.norm.weight", new long[] {hidden});
    if (!tie) {
      s.put("lm_head.weight", new long[] {VOCAB, hidden});
    }
    return s;
  }

  /** Writes the folder with weights drawn from {@code seed}; norms near 1, the rest near 0. */
  Path write(Path folder, long seed) throws IOException {
    Files.createDirectories(folder);
    Files.writeString(folder.resolve(HfConfig.FILE_NAME), configJson());
    Random random = new Random(seed);
    List<Map<String, SafetensorsFixture.Entry>> shardTensors = new java.util.ArrayList<>();
    for (int i = 0; i < shards; i++) {
      shardTensors.add(new LinkedHashMap<>());
    }
    Map<String, String> weightMap = new LinkedHashMap<>();
    int index = 0;
    for (Map.Entry<String, long[]> e : shapes().entrySet()) {
      long n = 1;
      for (long d : e.getValue()) {
        n *= d;
      }
      float[] v = new float[(int) n];
      boolean norm = e.getKey().endsWith("norm.weight");
      for (int j = 0; j < v.length; j++) {
        v[j] = (float) (norm ? 1 + 0.1 * random.nextGaussian() : 0.05 * random.nextGaussian());
      }
      int shard = index++ * shards / shapes().size();
      shardTensors.get(shard).put(e.getKey(), SafetensorsFixture.floats(dtype, e.getValue(), v));
      weightMap.put(e.getKey(), shardName(shard));
    }
    Map<String, String> metadata = Map.of("format", "pt");
    if (shards == 1) {
      SafetensorsFixture.write(folder.resolve(Safetensors.SINGLE_FILE), shardTensors.getFirst(), metadata);
    } else {
      for (int i = 0; i < shards; i++) {
        SafetensorsFixture.write(folder.resolve(shardName(i)), shardTensors.get(i), metadata);
      }
      ObjectNode idx = JSON.createObjectNode();
      idx.putObject("metadata").put("total_size", 0);
      ObjectNode wm = idx.putObject("weight_map");
      weightMap.forEach(wm::put);
      Files.writeString(folder.resolve(Safetensors.INDEX_FILE), JSON.writeValueAsString(idx));
    }
    return folder;
  }

  private String shardName(int i) {
    return String.format("model-%05d-of-%05d.safetensors", i + 1, shards);
  }
}
