package dev.selma.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class HfConfigTest {
  private static final Path FILE = Path.of("m", "config.json");

  private static ModelConfig parse(String json) throws ModelFormatException {
    return HfConfig.parse(FILE, json.getBytes(StandardCharsets.UTF_8));
  }

  /** Llama-3.1-8B's config.json, trimmed to the keys Selma reads plus a few it ignores. */
  private static final String LLAMA_31 = """
      {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "hidden_act": "silu",
       "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 131072,
       "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
       "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
       "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "rope_theta": 500000.0,
       "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256, "bos_token_id": 128000}
      """;

  @Test
  void readsLlama31WithLlama3RopeScaling() throws ModelFormatException {
    ModelConfig c = parse(LLAMA_31);
    assertEquals(new ModelConfig("llama", 128256, 4096, 14336, 32, 32, 8, 128, 1e-5, 500000,
        RopeScaling.llama3(8, 8192, 1, 4), 131072, false, false, ModelConfig.RopeStyle.HALF), c);
  }

  @Test
  void appliesDefaultsForMistral() throws ModelFormatException {
    ModelConfig c = parse("""
        {"architectures": ["MistralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
         "max_position_embeddings": 32768, "num_attention_heads": 32, "num_hidden_layers": 32,
         "vocab_size": 32768, "head_dim": null, "sliding_window": null}
        """);
    assertEquals("mistral", c.architecture());
    assertEquals(32, c.numKvHeads());
    assertEquals(128, c.headDim());
    assertEquals(1e-6, c.rmsNormEps());
    assertEquals(10000, c.ropeTheta());
    assertEquals(RopeScaling.NONE, c.ropeScaling());
    assertFalse(c.attentionBias());
    assertFalse(c.tieWordEmbeddings());
  }

  @Test
  void qwen2AlwaysHasQkvBiasAndMayTieEmbeddings() throws ModelFormatException {
    ModelConfig c = parse("""
        {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
         "max_position_embeddings": 32768, "num_attention_heads": 14, "num_hidden_layers": 24,
         "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": true,
         "vocab_size": 151936, "rope_scaling": null, "use_sliding_window": false}
        """);
    assertEquals("qwen2", c.architecture());
    assertEquals(64, c.headDim());
    assertTrue(c.attentionBias());
    assertTrue(c.tieWordEmbeddings());
    assertEquals(ModelConfig.RopeStyle.HALF, c.ropeStyle());
  }

  private static String withRope(String ropeJson) {
    return """
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "max_position_embeddings": 4096,
         "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10, "head_dim": 32, %s}
        """.formatted(ropeJson);
  }

  @Test
  void readsEveryRopeScalingType() throws ModelFormatException {
    assertEquals(RopeScaling.linear(2), parse(withRope("\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}")).ropeScaling());
    assertEquals(RopeScaling.dynamic(4), parse(withRope("\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 4.0}")).ropeScaling());
    assertEquals(RopeScaling.yarn(4, 4096, 32, 1, Double.NaN),
        parse(withRope("\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}")).ropeScaling());
    assertEquals(RopeScaling.yarn(4, 32768, 16, 2, 1.2), parse(withRope("\"rope_scaling\": {\"rope_type\": \"yarn\","
        + " \"factor\": 4.0, \"original_max_position_embeddings\": 32768, \"beta_fast\": 16, \"beta_slow\": 2,"
        + " \"attention_factor\": 1.2}")).ropeScaling());
    assertEquals(RopeScaling.NONE, parse(withRope("\"rope_scaling\": {\"rope_type\": \"default\"}")).ropeScaling());
    assertEquals(32, parse(withRope("\"rope_scaling\": null")).headDim());
  }

  @Test
  void readsTransformers5RopeParameters() throws ModelFormatException {
    ModelConfig c = parse(withRope("\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000000.0}"));
    assertEquals(1e6, c.ropeTheta());
    assertEquals(RopeScaling.NONE, c.ropeScaling());
    c = parse(withRope("\"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 32.0,"
        + " \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}"));
    assertEquals(500000, c.ropeTheta());
    assertEquals(RopeScaling.llama3(32, 8192, 1, 4), c.ropeScaling());
  }

  private static void rejects(String json, String expectedMessage) {
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> parse(json));
    assertEquals(FILE + ": " + expectedMessage, e.getMessage());
  }

  @Test
  void rejectsWhatItCannotRun() {
    rejects(LLAMA_31.replace("LlamaForCausalLM", "GPT2LMHeadModel"), "architectures: unsupported architecture "
        + "[\"GPT2LMHeadModel\"]; Selma supports LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM");
    rejects(withRope("\"x\": 1").replace("llama", "gemma"), "model_type: unsupported model_type gemma; Selma supports llama, mistral, qwen2");
    rejects(withRope("\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 2}"),
        "rope_scaling: unsupported rope type longrope; Selma supports default, linear, dynamic, yarn, llama3");
    rejects(withRope("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}"),
        "rope_scaling.original_max_position_embeddings: missing");
    rejects(withRope("\"rope_scaling\": {\"rope_type\": \"linear\"}"), "rope_scaling.factor: missing");
    rejects(withRope("\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 0.5}"),
        "rope_scaling: rope_scaling factor must be >= 1, got 0.5");
    rejects(withRope("\"hidden_act\": \"gelu\""), "hidden_act: activation gelu is not supported (Llama-family models use silu)");
    rejects(withRope("\"num_key_value_heads\": 3"), "num_attention_heads 4 is not a multiple of num_key_value_heads 3");
    rejects(withRope("\"x\": 1").replace("\"vocab_size\": 10", "\"vocab_size\": \"10\""), "vocab_size: must be an integer, found \"10\"");
    rejects(withRope("\"x\": 1").replace("\"vocab_size\": 10,", ""), "vocab_size: missing");
    rejects(withRope("\"rms_norm_eps\": \"small\""), "rms_norm_eps: must be a finite number, found \"small\"");
    rejects(withRope("\"tie_word_embeddings\": 1"), "tie_word_embeddings: must be true or false, found 1");
    rejects("[]", "JSON is not an object");
    rejects("{\"architectures\": [\"LlamaForCausalLM\"], ", "malformed JSON: Unexpected end-of-input within/between Object entries");
  }
}
