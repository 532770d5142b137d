package dev.selma.engine.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Reads a Hugging Face {@code config.json} into a {@link ModelConfig}.
 *
 * <p>Supported: {@code architectures} LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM (or,
 * without {@code architectures}, {@code model_type} llama, mistral, qwen2). Required keys: {@code
 * vocab_size}, {@code hidden_size}, {@code intermediate_size}, {@code num_hidden_layers}, {@code
 * num_attention_heads}, {@code max_position_embeddings}. Defaults as transformers applies them:
 * {@code num_key_value_heads} = heads, {@code head_dim} = hidden/heads, {@code rms_norm_eps} 1e-6,
 * {@code rope_theta} 10000, {@code tie_word_embeddings} false, {@code attention_bias} false (Qwen2
 * always has q/k/v biases). A JSON {@code null} counts as absent. {@code hidden_act}, when given,
 * must be silu.
 *
 * <p>RoPE scaling comes from {@code rope_scaling} or (transformers 5) {@code rope_parameters}, whose
 * {@code rope_type} (or legacy {@code type}) is default, linear, dynamic, yarn or llama3. transformers
 * 5 also moves {@code rope_theta} into {@code rope_parameters}. Hugging Face checkpoints rotate
 * halves of each head ({@link ModelConfig.RopeStyle#HALF}).
 */
public final class HfConfig {
  public static final String FILE_NAME = "config.json";
  private static final Map<String, String> ARCHITECTURES = Map.of(
      "LlamaForCausalLM", "llama", "MistralForCausalLM", "mistral", "Qwen2ForCausalLM", "qwen2");

  private HfConfig() {}

  /** Reads {@code config.json}, or the {@code config.json} inside a folder. */
  public static ModelConfig read(Path path) throws IOException {
    Path file = Files.isDirectory(path) ? path.resolve(FILE_NAME) : path;
    return parse(file, Files.readAllBytes(file));
  }

  /** Parses config JSON; {@code file} is only named in error messages. */
  public static ModelConfig parse(Path file, byte[] json) throws ModelFormatException {
    JsonNode root;
    try {
      root = Safetensors.JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new ModelFormatException(file, null, "malformed JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new ModelFormatException(file, null, "unreadable JSON: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new ModelFormatException(file, null, "JSON is not an object");
    }
    return new Reader(file, root).config();
  }

  private record Reader(Path file, JsonNode root) {
    ModelConfig config() throws ModelFormatException {
      String architecture = architecture();
      String act = string(root, "hidden_act");
      if (act != null && !act.equals("silu")) {
        throw error("hidden_act", "activation " + act + " is not supported (Llama-family models use silu)");
      }
      int hidden = requiredInt(root, "hidden_size");
      int heads = requiredInt(root, "num_attention_heads");
      int kvHeads = optionalInt(root, "num_key_value_heads", heads);
      if (heads <= 0 || hidden <= 0) {
        throw error("num_attention_heads", "hidden_size and num_attention_heads must be > 0");
      }
      int maxPositions = requiredInt(root, "max_position_embeddings");
      JsonNode ropeParameters = present(root, "rope_parameters") ? root.get("rope_parameters") : null;
      double theta = optionalDouble(root, "rope_theta", Double.NaN);
      if (Double.isNaN(theta) && ropeParameters != null && ropeParameters.isObject()) {
        theta = optionalDouble(ropeParameters, "rope_theta", Double.NaN);
      }
      boolean bias = architecture.equals("qwen2") || optionalBoolean(root, "attention_bias", false);
      try {
        return new ModelConfig(
            architecture,
            requiredInt(root, "vocab_size"),
            hidden,
            requiredInt(root, "intermediate_size"),
            requiredInt(root, "num_hidden_layers"),
            heads,
            kvHeads,
            optionalInt(root, "head_dim", hidden / heads),
            optionalDouble(root, "rms_norm_eps", 1e-6),
            Double.isNaN(theta) ? 10000 : theta,
            ropeScaling(maxPositions),
            maxPositions,
            bias,
            optionalBoolean(root, "tie_word_embeddings", false),
            ModelConfig.RopeStyle.HALF);
      } catch (IllegalArgumentException e) {
        throw new ModelFormatException(file, null, e.getMessage(), e);
      }
    }

    private String architecture() throws ModelFormatException {
      JsonNode archs = root.get("architectures");
      if (archs != null && !archs.isNull()) {
        if (!archs.isArray() || archs.isEmpty()) {
          throw error("architectures", "must be a non-empty array of strings");
        }
        for (JsonNode a : archs) {
          String arch = ARCHITECTURES.get(a.asText());
          if (arch != null) {
            return arch;
          }
        }
        throw error("architectures", "unsupported architecture " + archs
            + "; Selma supports LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM");
      }
      String modelType = string(root, "model_type");
      if (modelType == null) {
        throw error("architectures", "neither architectures nor model_type is given");
      }
      if (!ARCHITECTURES.containsValue(modelType)) {
        throw error("model_type", "unsupported model_type " + modelType + "; Selma supports llama, mistral, qwen2");
      }
      return modelType;
    }

    private RopeScaling ropeScaling(int maxPositions) throws ModelFormatException {
      String key = present(root, "rope_scaling") ? "rope_scaling" : "rope_parameters";
      if (!present(root, key)) {
        return RopeScaling.NONE;
      }
      JsonNode s = root.get(key);
      if (!s.isObject()) {
        throw error(key, "must be an object");
      }
      String type = string(s, "rope_type");
      if (type == null) {
        type = string(s, "type");
      }
      if (type == null) {
        // transformers 5 writes rope_parameters even without scaling, with rope_type "default".
        if (key.equals("rope_parameters") && !present(s, "factor")) {
          return RopeScaling.NONE;
        }
        throw error(key, "neither rope_type nor type is given");
      }
      try {
        return switch (type) {
          case "default" -> RopeScaling.NONE;
          case "linear" -> RopeScaling.linear(requiredDouble(s, key, "factor"));
          case "dynamic" -> RopeScaling.dynamic(requiredDouble(s, key, "factor"));
          case "yarn" -> RopeScaling.yarn(
              requiredDouble(s, key, "factor"),
              optionalInt(s, "original_max_position_embeddings", maxPositions),
              optionalDouble(s, "beta_fast", 32),
              optionalDouble(s, "beta_slow", 1),
              optionalDouble(s, "attention_factor", Double.NaN));
          case "llama3" -> RopeScaling.llama3(
              requiredDouble(s, key, "factor"),
              requiredInt(s, key + ".original_max_position_embeddings", "original_max_position_embeddings"),
              requiredDouble(s, key, "low_freq_factor"),
              requiredDouble(s, key, "high_freq_factor"));
          default -> throw error(key, "unsupported rope type " + type
              + "; Selma supports default, linear, dynamic, yarn, llama3");
        };
      } catch (IllegalArgumentException e) {
        throw new ModelFormatException(file, key, e.getMessage(), e);
      }
    }

    private static boolean present(JsonNode node, String key) {
      JsonNode v = node.get(key);
      return v != null && !v.isNull();
    }

    private String string(JsonNode node, String key) throws ModelFormatException {
      if (!present(node, key)) {
        return null;
      }
      if (!node.get(key).isTextual()) {
        throw error(key, "must be a string, found " + node.get(key));
      }
      return node.get(key).asText();
    }

    private int requiredInt(JsonNode node, String key) throws ModelFormatException {
      return requiredInt(node, key, key);
    }

    private int requiredInt(JsonNode node, String item, String key) throws ModelFormatException {
      if (!present(node, key)) {
        throw error(item, "missing");
      }
      return optionalInt(node, key, 0);
    }

    private int optionalInt(JsonNode node, String key, int defaultValue) throws ModelFormatException {
      if (!present(node, key)) {
        return defaultValue;
      }
      JsonNode v = node.get(key);
      if (!v.isIntegralNumber() || !v.canConvertToInt()) {
        throw error(key, "must be an integer, found " + v);
      }
      return v.asInt();
    }

    private double requiredDouble(JsonNode node, String item, String key) throws ModelFormatException {
      if (!present(node, key)) {
        throw error(item + "." + key, "missing");
      }
      return optionalDouble(node, key, 0);
    }

    private double optionalDouble(JsonNode node, String key, double defaultValue) throws ModelFormatException {
      if (!present(node, key)) {
        return defaultValue;
      }
      JsonNode v = node.get(key);
      if (!v.isNumber() || !Double.isFinite(v.asDouble())) {
        throw error(key, "must be a finite number, found " + v);
      }
      return v.asDouble();
    }

    private boolean optionalBoolean(JsonNode node, String key, boolean defaultValue) throws ModelFormatException {
      if (!present(node, key)) {
        return defaultValue;
      }
      if (!node.get(key).isBoolean()) {
        throw error(key, "must be true or false, found " + node.get(key));
      }
      return node.get(key).asBoolean();
    }

    private ModelFormatException error(String item, String problem) {
      return new ModelFormatException(file, item, problem);
    }
  }
}
