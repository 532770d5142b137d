package dev.selma.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.generate.FinishReason;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.Safetensors;
import dev.selma.engine.model.Tensor;
import dev.selma.engine.tokenizer.template.Message;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The bundled demo model through the whole engine: its GGUF tokenizer and chat template produce the
 * prompts transformers was given, and its logits (Q8_0 weights, plain positions) match
 * transformers' on the same dequantized weights (fixtures by tools/train_demo_model.py).
 */
class DemoModelTest {
  static final Path MODEL = Path.of("../demo-corpus/selma-demo.gguf");
  private static final Path FIXTURE = Path.of("src/test/resources/fixtures/demo");
  private static Engine engine;
  private static JsonNode reference;

  @BeforeAll
  static void load() throws IOException {
    engine = Engine.load(EngineOptions.of(MODEL).withThreads(2).withContextLength(4096));
    reference = new ObjectMapper().readTree(FIXTURE.resolve("reference.json").toFile());
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  private static int[] ids(JsonNode list) {
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = list.get(i).asInt();
    }
    return out;
  }

  /** Options without a chunk take the backend's (512 tokens a forward step on the CPU); a negative one is refused. */
  @Test
  void promptsArePrefilledInTheBackendsDefaultChunkUnlessConfigured() {
    assertEquals(0, EngineOptions.of(MODEL).prefillChunk());
    assertEquals(engine.backendName().startsWith("cuda") ? EngineOptions.GPU_PREFILL_CHUNK
        : EngineOptions.CPU_PREFILL_CHUNK, engine.prefillChunk(), engine.backendName());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> EngineOptions.of(MODEL).withPrefillChunk(-1));
    assertTrue(e.getMessage().contains("prefill chunk must be >= 0"), e.getMessage());
  }

  @Test
  void theGgufTokenizerEncodesThePromptsAsHuggingFaceDid() {
    for (int k = 0; k < reference.get("prompts").size(); k++) {
      String text = reference.get("prompt_texts").get(k).asText();
      assertArrayEquals(ids(reference.get("prompts").get(k)), engine.tokenizer().encode(text, false), "prompt " + k);
    }
  }

  @Test
  void theChatTemplateRendersSelmasDocumentQaLayout() {
    String rendered = engine.renderChat(List.of(Message.system("S."), Message.user("Documents:\n\nQ?")), true,
        java.util.Map.of());
    assertEquals("<s>[INST] S.\n\nDocuments:\n\nQ? [/INST]", rendered);
  }

  @Test
  void logitsAndGreedyContinuationsMatchTransformers() throws IOException {
    try (Safetensors st = Safetensors.open(FIXTURE.resolve("logits.safetensors"))) {
      for (int k = 0; k < reference.get("prompts").size(); k++) {
        int[] prompt = ids(reference.get("prompts").get(k));
        Tensor t = st.tensor("logits." + k);
        float[] expected = Quants.dequantize(t);
        int vocab = (int) t.cols();
        // The fixture keeps the rows of a few positions (the last one; the greedy continuations cover the rest).
        int[] positions = ids(reference.get("positions").get(k));
        assertEquals(positions.length, t.rows());
        float[][] got;
        try (ModelFiles files = ModelLoader.open(MODEL); CpuBackend backend = new CpuBackend(2);
            Sequence seq = new Llama(files.config(), files.weights(), backend).newSequence(prompt.length, prompt.length)) {
          got = seq.appendAllLogits(prompt);
        }
        double maxDiff = 0, maxRef = 0;
        int row = 0;
        for (int p : positions) {
          for (int v = 0; v < vocab; v++) {
            float e = expected[row * vocab + v];
            maxDiff = Math.max(maxDiff, Math.abs(e - got[p][v]));
            maxRef = Math.max(maxRef, Math.abs(e));
          }
          row++;
        }
        assertTrue(maxDiff <= 1e-4 * maxRef, "prompt " + k + ": max|Δ| = " + maxDiff / maxRef + "·max|logit|");
        int[] greedy = ids(reference.get("greedy").get(k));
        GenerationResult r = engine.generate(GenerationRequest.builder(prompt).maxNewTokens(greedy.length).build());
        assertArrayEquals(greedy, r.tokens(), "prompt " + k + " greedy");
      }
    }
  }

  @Test
  void itAnswersAPlantedQuestionAndStopsAtEndOfSequence() {
    String doc = "It is a truth universally acknowledged that a single man in possession of a good fortune must be "
        + "in want of a wife. The vault code of the Netherfield library is 48213. However little known the feelings "
        + "or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed.";
    int[] prompt = engine.encodeChat(List.of(
        Message.system("Answer the question from the documents. Quote the sentence that answers it."),
        Message.user("Documents:\n\n[doc 1] id: pp-1 | title: Pride and Prejudice\n" + doc
            + "\n\nQuestion: What is the vault code of the Netherfield library?")));
    GenerationResult r = engine.generate(engine.request(prompt).maxNewTokens(32).build());
    assertEquals("The vault code of the Netherfield library is 48213.", r.text().strip());
    assertEquals(FinishReason.STOP, r.finishReason());
  }

  @Test
  void theModelsProfileAttendsDenselyWithinItsTrainedWindowAndWithQuerySelectAndMergeBeyond() {
    assertEquals(4096, engine.attentionProfile().trainedWindow());
    assertEquals(AttentionConfig.dense(), engine.attentionFor(4096));
    assertEquals(AttentionConfig.selectAndMergeWithin(4096).withPositions(new AttentionConfig.Reindexed())
        .withSelection(AttentionConfig.Selection.QUERY), engine.attentionFor(4097));
  }
}
