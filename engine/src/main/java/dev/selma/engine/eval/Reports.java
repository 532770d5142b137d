package dev.selma.engine.eval;

import java.io.IOException;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Evaluation results as JSON and Markdown tables; {@link Heatmaps} draws them. Nothing here needs
 * {@code java.desktop}, so results are written by a runtime without it (the slim one on the GPU machine).
 */
public final class Reports {
  private Reports() {}

  public static String json(List<EvalResult> results) {
    return results.stream().map(r -> String.format(Locale.ROOT,
            "{\"task\":\"%s\",\"scheme\":\"%s\",\"target_length\":%d,\"prompt_tokens\":%d,\"depth\":%.4f,\"needle\":%d,"
                + "\"expected\":%s,\"answer\":%s,\"correct\":%b,\"seconds\":%.3f,\"prefill_seconds\":%.3f}",
            r.task(), r.scheme().label(), r.targetLength(), r.promptTokens(), r.depth(), r.needle(),
            quote(r.expected()), quote(r.answer()), r.correct(), r.seconds(), r.prefillSeconds()))
        .collect(Collectors.joining(",\n  ", "[\n  ", "\n]\n"));
  }

  /** The results {@link #json} wrote. */
  public static List<EvalResult> parse(String json) throws IOException {
    List<EvalResult> results = new java.util.ArrayList<>();
    for (com.fasterxml.jackson.databind.JsonNode n : new com.fasterxml.jackson.databind.ObjectMapper().readTree(json)) {
      results.add(new EvalResult(Task.valueOf(n.get("task").asText()), Scheme.parse(n.get("scheme").asText()),
          n.get("target_length").asInt(), n.get("prompt_tokens").asInt(), n.get("depth").asDouble(),
          n.get("needle").asInt(), n.get("expected").asText(), n.get("answer").asText(), n.get("correct").asBoolean(),
          n.get("seconds").asDouble(), n.path("prefill_seconds").asDouble()));
    }
    return results;
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }

  /** Accuracy per task, scheme and length, as a Markdown table. */
  public static String table(List<EvalResult> results) {
    return cells(results, cell -> {
      long right = cell.stream().filter(EvalResult::correct).count();
      return String.format(Locale.ROOT, "%.0f%% (%d/%d)", 100.0 * right / cell.size(), right, cell.size());
    });
  }

  /**
   * Mean prefill seconds and prompt tokens per second per task, scheme and length, as a Markdown
   * table (each case reads its whole prompt: nothing is shared between cases).
   */
  public static String timings(List<EvalResult> results) {
    return cells(results, cell -> {
      double seconds = cell.stream().mapToDouble(EvalResult::prefillSeconds).average().orElse(0);
      double tokens = cell.stream().mapToInt(EvalResult::promptTokens).average().orElse(0);
      return String.format(Locale.ROOT, "%.2f s (%.0f tok/s)", seconds, seconds > 0 ? tokens / seconds : 0);
    });
  }

  private static String cells(List<EvalResult> results, java.util.function.Function<List<EvalResult>, String> cellText) {
    TreeSet<Integer> lengths = results.stream().map(EvalResult::targetLength).collect(Collectors.toCollection(TreeSet::new));
    StringBuilder b = new StringBuilder("| task | scheme |");
    for (int l : lengths) {
      b.append(' ').append(l).append(" |");
    }
    b.append("\n| --- | --- |").append(" ---: |".repeat(lengths.size())).append('\n');
    results.stream().map(r -> r.task() + " | " + r.scheme().label()).distinct().forEach(row -> {
      b.append("| ").append(row).append(" |");
      for (int l : lengths) {
        List<EvalResult> cell = results.stream()
            .filter(r -> (r.task() + " | " + r.scheme().label()).equals(row) && r.targetLength() == l).toList();
        b.append(cell.isEmpty() ? " – |" : " " + cellText.apply(cell) + " |");
      }
      b.append('\n');
    });
    return b.toString();
  }
}
