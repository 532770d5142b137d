package dev.selma.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReportsTest {
  private static final List<EvalResult> RESULTS = List.of(
      new EvalResult(Task.PASSKEY, Scheme.DENSE, 1024, 1020, 0.0, 0, "123", " 123.", true, 0.5, 0.25),
      new EvalResult(Task.PASSKEY, Scheme.DENSE, 1024, 1021, 1.0, 0, "456", " 4 5 6 \"x\"\n", false, 0.5, 0.5),
      new EvalResult(Task.PASSKEY, Scheme.DENSE, 4096, 4090, 0.0, 0, "789", " 789.", true, 1.5, 1.0),
      new EvalResult(Task.PASSKEY, Scheme.SELECT_MERGE_REINDEXED, 1024, 1020, 0.0, 0, "123", " 123", true, 0.4, 0.2));

  @Test
  void everySchemeIsAConfigurationTheModelAcceptsAtEveryLength() {
    var model = dev.selma.engine.llama.RandomModel.config(50, 32, 2, 4, 2, false); // trained window 4096
    for (Scheme s : Scheme.values()) {
      for (int length : new int[] {1024, 32768, 1 << 20}) {
        s.config(length, 4096, 64).validateFor(model);
      }
      assertEquals(s, Scheme.parse(s.label()));
    }
    assertEquals(new dev.selma.engine.attention.AttentionConfig.CrdNtk(8192, 1),
        Scheme.CRD_NTK.config(32768, 4096, 64).positions());
  }

  @Test
  void passkeyIsTheFirstNumberAndNeedlesMatchAnywhere() {
    assertTrue(Evaluation.score(Task.PASSKEY, "48213", " 48213. Remember it."));
    assertFalse(Evaluation.score(Task.PASSKEY, "48213", " 1 48213"));
    assertFalse(Evaluation.score(Task.PASSKEY, "482", " 48213"));
    assertTrue(Evaluation.score(Task.NIAH_SINGLE, "Crimson", "The colour of the tower is crimson."));
    assertFalse(Evaluation.score(Task.NIAH_MULTIKEY, "48213", "The vault code is 4821."));
  }

  @Test
  void multiValueNeedlesNeedEveryValue() {
    assertTrue(Evaluation.score(Task.NIAH_MULTIVALUE, "11111,22222", "They are 22222 and 11111."));
    assertFalse(Evaluation.score(Task.NIAH_MULTIVALUE, "11111,22222", "One of them is 11111."));
  }

  @Test
  void jsonHoldsEveryResultWithItsAnswerEscaped() throws Exception {
    JsonNode json = new ObjectMapper().readTree(Reports.json(RESULTS));
    assertEquals(4, json.size());
    assertEquals(" 4 5 6 \"x\"\n", json.get(1).get("answer").asText());
    assertEquals("select-merge-reindexed", json.get(3).get("scheme").asText());
    assertEquals(0.2, json.get(3).get("prefill_seconds").asDouble());
  }

  @Test
  void parsingTheJsonGivesTheResultsBack() throws Exception {
    assertEquals(RESULTS, Reports.parse(Reports.json(RESULTS)));
  }

  @Test
  void theTableGivesAccuracyPerTaskSchemeAndLength() {
    String table = Reports.table(RESULTS);
    assertTrue(table.contains("| PASSKEY | dense | 50% (1/2) | 100% (1/1) |"), table);
    assertTrue(table.contains("| PASSKEY | select-merge-reindexed | 100% (1/1) | – |"), table);
  }

  @Test
  void theTimingsGiveMeanPrefillSecondsAndTokensPerSecond() {
    String table = Reports.timings(RESULTS);
    assertTrue(table.contains("| PASSKEY | dense | 0.38 s (2721 tok/s) | 1.00 s (4090 tok/s) |"), table);
  }

  @Test
  void oneHeatmapPerTaskAndScheme(@TempDir Path dir) throws Exception {
    List<Path> pngs = Heatmaps.write(RESULTS, dir);
    assertEquals(2, pngs.size());
    BufferedImage img = ImageIO.read(pngs.getFirst().toFile());
    assertTrue(img.getWidth() > 100 && img.getHeight() > 100);
  }

  @Test
  void anEvaluationNeedsValidDepthsAndSomethingToRun() {
    assertThrows(IllegalArgumentException.class,
        () -> new Evaluation(List.of(Task.PASSKEY), List.of(1024), List.of(1.5), 1, List.of(Scheme.DENSE), 1));
    assertThrows(IllegalArgumentException.class,
        () -> new Evaluation(List.of(), List.of(1024), List.of(0.5), 1, List.of(Scheme.DENSE), 1));
    assertThrows(IllegalArgumentException.class, () -> new Evaluation(List.of(Task.PASSKEY), List.of(1024),
        List.of(0.5), 1, List.of(Scheme.DENSE), 1, Map.of(), 64, -1));
    assertEquals("unknown scheme 'sparse'; use one of dense, self-extend, crd-ntk, select-merge, select-merge-reindexed, "
        + "select-merge-self-extend, select-merge-bound-reindexed, select-merge-bound-self-extend, "
        + "select-merge-query-reindexed",
        assertThrows(IllegalArgumentException.class, () -> Scheme.parse("sparse")).getMessage());
  }

  @Test
  void aSpanSizesSelectAndMergeToGatherThatManyTokens() {
    // 4096 tokens in blocks of 64: 1 sink, 4 window and 4 merge blocks leave 55 to choose; 2048: 23.
    assertEquals(55, Scheme.SELECT_MERGE_BOUND_REINDEXED.config(131_072, 4096, 64).topK());
    assertEquals(23, Scheme.SELECT_MERGE_BOUND_REINDEXED.config(131_072, 4096, 64, 2048).topK());
    assertEquals(Scheme.DENSE.config(131_072, 4096, 64), Scheme.DENSE.config(131_072, 4096, 64, 2048));
  }
}
