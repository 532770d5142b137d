package dev.selma.engine.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Encode throughput of Selma's tokenizers against Hugging Face's own (native, through DJL), in one
 * JVM, single-threaded, on about a million tokens of English prose, encoded two ways: as one text
 * (the Solr handler's case: a whole prompt) and paragraph by paragraph (the text split at blank
 * lines, one encode call each: inputs of the size HF is usually given). Prints a table and writes
 * {@code engine/target/tokenizer-benchmark.json}.
 *
 * <pre>
 * ./mvnw -B -ntp -q -pl engine test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=dev.selma.engine.tokenizer.TokenizerBenchmark [-Dexec.args="path/to/text.txt"]
 * </pre>
 *
 * Without an argument it reads {@code .cache/corpus/austen.txt} (written by tools/austen-text.py)
 * if present, else generates prose. "first" is one encode of the whole text on a freshly loaded
 * tokenizer (cold caches, cold JIT); "steady" the median of 3 passes after 1 warm-up pass.
 * Llama 3.1 is left out: it is Llama 3's vocabulary with a BOS added.
 */
public final class TokenizerBenchmark {
  private static final int WARMUP = 1;
  private static final int RUNS = 3;
  private static final List<String> VOCABULARIES = List.of("llama3", "llama2", "mistral", "qwen3");

  private record Row(String vocabulary, String mode, int tokens, double selmaFirstMs, double selmaSteadyMs,
                     double hfFirstMs, double hfSteadyMs) {}

  /** Encodes a list of texts, returning all ids concatenated. */
  private interface Encoder {
    int[] encode(String text);
  }

  public static void main(String[] args) throws IOException {
    Path root = repositoryRoot();
    if (System.getProperty("selma.vocab.dir") == null) {
      System.setProperty("selma.vocab.dir", root.resolve(".cache/vocab").toString());
    }
    Path textFile = args.length > 0 ? Path.of(args[0]) : root.resolve(".cache/corpus/austen.txt");
    String text;
    String corpus;
    if (Files.exists(textFile)) {
      text = Files.readString(textFile);
      corpus = textFile.getFileName().toString();
    } else {
      StringBuilder sb = new StringBuilder();
      Random r = new Random(1);
      while (sb.length() < 4_000_000) {
        sb.append(TestStrings.prose(r)).append(r.nextInt(4) == 0 ? "\n\n" : " ");
      }
      text = sb.toString();
      corpus = "generated prose";
    }
    System.out.printf(Locale.ROOT, "corpus: %s, %,d characters%n", corpus, text.length());

    List<String> paragraphs = List.of(text.split("\n\n"));
    List<Row> rows = new ArrayList<>();
    for (String vocabulary : VOCABULARIES) {
      Path dir = Vocabularies.dir(vocabulary);
      Tokenizer selma = Tokenizer.fromHuggingFace(dir);
      Vocabularies.Reference hf = new Vocabularies.Reference(dir.resolve("tokenizer.json"));
      Encoder selmaEncoder = s -> selma.encode(s, false);
      Encoder hfEncoder = s -> hf.encode(s, false);
      double selmaFirst = time(selmaEncoder, List.of(text));
      double hfFirst = time(hfEncoder, List.of(text));
      for (String mode : new String[] {"whole text", "paragraphs"}) {
        List<String> inputs = mode.equals("whole text") ? List.of(text) : paragraphs;
        int[] ids = encodeAll(selmaEncoder, inputs);
        if (!Arrays.equals(ids, encodeAll(hfEncoder, inputs))) {
          throw new AssertionError(vocabulary + ": Selma's ids differ from HF's");
        }
        boolean whole = mode.equals("whole text");
        rows.add(new Row(vocabulary, mode, ids.length, whole ? selmaFirst : Double.NaN, steady(selmaEncoder, inputs),
            whole ? hfFirst : Double.NaN, steady(hfEncoder, inputs)));
        System.out.printf(Locale.ROOT, "%s, %s: done%n", vocabulary, mode);
      }
    }

    StringBuilder table = new StringBuilder();
    table.append("| vocabulary | input | tokens | Selma first (ms) | Selma steady (ms) | Selma steady (M tok/s) "
        + "| HF first (ms) | HF steady (ms) | HF steady (M tok/s) | Selma / HF speed |\n");
    table.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (Row r : rows) {
      table.append(String.format(Locale.ROOT, "| %s | %s | %,d | %s | %.0f | %.2f | %s | %.0f | %.2f | %.1f× |%n",
          r.vocabulary(), r.mode(), r.tokens(), cell(r.selmaFirstMs()), r.selmaSteadyMs(),
          r.tokens() / r.selmaSteadyMs() / 1000, cell(r.hfFirstMs()), r.hfSteadyMs(), r.tokens() / r.hfSteadyMs() / 1000, r.hfSteadyMs() / r.selmaSteadyMs()));
    }
    System.out.print(table);

    // The pre-tokenizer alone: the hand-written scanner against the tokenizer.json regex in java.util.regex.
    Pattern regex = Pattern.compile(SplitScanner.LLAMA3.regex, Pattern.UNICODE_CHARACTER_CLASS);
    double regexMs = steadyRun(() -> {
      Matcher m = regex.matcher(text);
      int pieces = 0;
      while (m.find()) {
        pieces++;
      }
      return pieces;
    });
    double scannerMs = steadyRun(() -> {
      int pieces = 0;
      for (int i = 0; i < text.length(); pieces++) {
        i = SplitScanner.LLAMA3.next(text, i, text.length());
      }
      return pieces;
    });
    System.out.printf(Locale.ROOT, "%nLlama 3 pre-tokenizer split of the whole text: scanner %.0f ms, java.util.regex %.0f ms"
        + " (%.1f× faster)%n", scannerMs, regexMs, regexMs / scannerMs);

    StringBuilder json = new StringBuilder();
    json.append(String.format(Locale.ROOT,
        "{\n  \"date\": \"%s\",\n  \"corpus\": \"%s\",\n  \"characters\": %d,\n  \"paragraphs\": %d,\n"
            + "  \"java\": \"%s\",\n  \"processors\": %d,\n  \"split_scanner_ms\": %.1f,\n"
            + "  \"split_regex_ms\": %.1f,\n  \"results\": [\n",
        LocalDate.now(), corpus, text.length(), paragraphs.size(), System.getProperty("java.version"),
        Runtime.getRuntime().availableProcessors(), scannerMs, regexMs));
    for (int i = 0; i < rows.size(); i++) {
      Row r = rows.get(i);
      json.append(String.format(Locale.ROOT,
          "    {\"vocabulary\": \"%s\", \"input\": \"%s\", \"tokens\": %d, \"selma_first_ms\": %s,"
              + " \"selma_steady_ms\": %.1f, \"hf_first_ms\": %s, \"hf_steady_ms\": %.1f}%s%n",
          r.vocabulary(), r.mode(), r.tokens(), jsonNumber(r.selmaFirstMs()), r.selmaSteadyMs(),
          jsonNumber(r.hfFirstMs()), r.hfSteadyMs(), i + 1 < rows.size() ? "," : ""));
    }
    json.append("  ]\n}\n");
    Path out = root.resolve("engine/target/tokenizer-benchmark.json");
    Files.createDirectories(out.getParent());
    Files.writeString(out, json);
    System.out.println("wrote " + out);
  }

  /** Median milliseconds of a task that counts pieces, after warm-up; every run must count the same. */
  private static double steadyRun(java.util.function.IntSupplier task) {
    int expected = task.getAsInt();
    double[] times = new double[RUNS];
    for (int i = 0; i < WARMUP + RUNS; i++) {
      long t0 = System.nanoTime();
      int pieces = task.getAsInt();
      double elapsed = ms(System.nanoTime() - t0);
      if (pieces != expected) {
        throw new AssertionError("the split is not deterministic");
      }
      if (i >= WARMUP) {
        times[i - WARMUP] = elapsed;
      }
    }
    Arrays.sort(times);
    return times[RUNS / 2];
  }

  private static String cell(double ms) {
    return Double.isNaN(ms) ? "–" : String.format(Locale.ROOT, "%.0f", ms);
  }

  private static String jsonNumber(double v) {
    return Double.isNaN(v) ? "null" : String.format(Locale.ROOT, "%.1f", v);
  }

  private static int[] encodeAll(Encoder encoder, List<String> inputs) {
    if (inputs.size() == 1) {
      return encoder.encode(inputs.getFirst());
    }
    IntArray all = new IntArray(1 << 20);
    for (String s : inputs) {
      all.addAll(encoder.encode(s));
    }
    return all.toArray();
  }

  /** Milliseconds for one pass over the inputs. */
  private static double time(Encoder encoder, List<String> inputs) {
    long t0 = System.nanoTime();
    for (String s : inputs) {
      encoder.encode(s);
    }
    return ms(System.nanoTime() - t0);
  }

  private static double steady(Encoder encoder, List<String> inputs) {
    for (int i = 0; i < WARMUP; i++) {
      time(encoder, inputs);
    }
    double[] times = new double[RUNS];
    for (int i = 0; i < RUNS; i++) {
      times[i] = time(encoder, inputs);
    }
    Arrays.sort(times);
    return times[RUNS / 2];
  }

  private static double ms(long nanos) {
    return nanos / 1e6;
  }

  /** The folder holding tools/fetch-vocabularies.sh, from the working directory upwards. */
  private static Path repositoryRoot() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.exists(p.resolve("tools/fetch-vocabularies.sh"))) {
        return p;
      }
    }
    throw new IllegalStateException("run from inside the Selma repository");
  }
}
