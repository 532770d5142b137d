package dev.selma.engine.attention;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.Safetensors;
import dev.selma.engine.model.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Self-Extend against a Python reference of the paper's formula applied to the transformers Llama
 * (tools/make_hf_fixtures.py), on the llama2 fixture model: dense attention, one prefill.
 */
class SelfExtendFixtureTest {
  private static final Path DIR = Path.of("src/test/resources/fixtures/hf/llama2");

  @Test
  void logitsMatchThePythonReference() throws IOException {
    JsonNode spec = new ObjectMapper().readTree(DIR.resolve("selfextend.json").toFile());
    int[] prompt = new int[spec.get("prompt").size()];
    for (int i = 0; i < prompt.length; i++) {
      prompt[i] = spec.get("prompt").get(i).asInt();
    }
    float[] expected;
    long vocab;
    try (Safetensors st = Safetensors.open(DIR.resolve("selfextend.safetensors"))) {
      Tensor t = st.tensor("logits");
      expected = Quants.dequantize(t);
      vocab = t.cols();
    }
    AttentionConfig selfExtend = AttentionConfig.dense()
        .withPositions(new AttentionConfig.SelfExtend(spec.get("G").asInt(), spec.get("W").asInt()));
    try (ModelFiles files = ModelLoader.open(DIR); CpuBackend backend = new CpuBackend(2)) {
      Llama model = new Llama(files.config(), files.weights(), backend);
      double maxDiff = 0, maxRef = 0;
      try (Sequence s = model.newSequence(prompt.length, prompt.length)) {
        s.attention(selfExtend);
        float[][] got = s.appendAllLogits(prompt);
        for (int p = 0; p < prompt.length; p++) {
          for (int v = 0; v < vocab; v++) {
            float e = expected[(int) (p * vocab + v)];
            maxDiff = Math.max(maxDiff, Math.abs(e - got[p][v]));
            maxRef = Math.max(maxRef, Math.abs(e));
          }
        }
      }
      assertTrue(maxDiff <= 1e-4 * maxRef, "max|Δ| = " + maxDiff / maxRef + "·max|logit|");
    }
  }
}
