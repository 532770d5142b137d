package dev.selma.engine.eval;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The CI-sized long-context check: the demo model, trained on at most 4K tokens, finds passkeys in
 * 32K-token prompts with select-and-merge (key-bound selection, re-indexed positions) on the CPU.
 */
class LongContextPasskeyTest {
  @Test
  void theDemoModelFindsPasskeysAtEightTimesItsTrainedWindow() throws IOException {
    Evaluation evaluation = new Evaluation(List.of(Task.PASSKEY), List.of(32_768), List.of(0.1, 0.4, 0.6, 0.9), 1,
        List.of(Scheme.SELECT_MERGE_BOUND_REINDEXED), 7);
    try (Engine engine = Engine.load(EngineOptions.of(Path.of("../demo-corpus/selma-demo.gguf"))
        .withContextLength(32_768 + 64).withPrefillChunk(1024))) {
      List<EvalResult> results = evaluation.run(engine, null, line -> {});
      long right = results.stream().filter(EvalResult::correct).count();
      assertTrue(right >= 0.95 * results.size(), right + " of " + results.size() + " right: " + results);
    }
  }
}
