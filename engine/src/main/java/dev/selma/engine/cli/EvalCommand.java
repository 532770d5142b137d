package dev.selma.engine.cli;

import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import dev.selma.engine.eval.EvalResult;
import dev.selma.engine.eval.Evaluation;
import dev.selma.engine.eval.Heatmaps;
import dev.selma.engine.eval.Reports;
import dev.selma.engine.eval.Scheme;
import dev.selma.engine.eval.Task;
import dev.selma.engine.kv.KvPrecision;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "eval", description = "Long-context retrieval: passkey and needle-in-a-haystack accuracy by length, depth and attention scheme.")
final class EvalCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = {"-m", "--model"}, required = true) Path model;

  @Option(names = "--tasks", split = ",", defaultValue = "passkey",
      description = "passkey, niah-single, niah-multikey, niah-multivalue")
  List<String> tasks;

  @Option(names = "--lengths", split = ",", defaultValue = "1024,2048,4096", description = "prompt lengths in tokens")
  List<Integer> lengths;

  @Option(names = "--depths", split = ",", defaultValue = "0,0.25,0.5,0.75,1") List<Double> depths;

  @Option(names = "--needles", defaultValue = "2", description = "needles per length and depth") int needles;

  @Option(names = "--schemes", split = ",", defaultValue = "dense,select-merge-reindexed",
      description = "dense, self-extend, crd-ntk, select-merge, select-merge-reindexed, select-merge-self-extend, "
          + "select-merge-bound-reindexed, select-merge-bound-self-extend, select-merge-query-reindexed; "
          + "scheme@N runs it only at lengths up to N (e.g. dense@32768)")
  List<String> schemes;

  @Option(names = "--block-size", defaultValue = "64",
      description = "select-and-merge's block size; its top k follows so that re-indexed positions span the trained window")
  int blockSize;

  @Option(names = "--span", defaultValue = "0",
      description = "tokens select-and-merge gathers per query block (sinks, chosen blocks, local window); "
          + "0 = the model's trained window")
  int span;

  @Option(names = "--haystack", description = "text file or folder of .txt files (prose for the needle tasks)")
  Path haystack;

  @Option(names = "--seed", defaultValue = "1") long seed;

  @Option(names = {"-t", "--threads"}, defaultValue = "0") int threads;

  @Option(names = "--backend", defaultValue = "auto") String backend;

  @Option(names = "--kv-precision", defaultValue = "auto", description = "KV pages: auto or fp8") String kvPrecision;

  @Option(names = "--prefill-chunk", defaultValue = "0",
      description = "prompt tokens per forward step (0: the backend's, 4096 on a GPU and 512 on the CPU)")
  int prefillChunk;

  @Option(names = "--out", defaultValue = "eval-results", description = "folder for results.json, results.md and heatmaps")
  Path out;

  @Option(names = "--render", description = "write results.md and the heatmaps from this results.json and run nothing"
      + " (for results from a machine whose Java runtime has no java.desktop)")
  Path render;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    if (render != null) {
      List<EvalResult> results = Reports.parse(Files.readString(render));
      writeReports(results, err);
      return 0;
    }
    List<Task> taskList = tasks.stream().map(t -> {
      try {
        return Task.valueOf(t.toUpperCase(Locale.ROOT).replace('-', '_'));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("unknown task '" + t + "'; use passkey, niah-single, niah-multikey or niah-multivalue");
      }
    }).toList();
    List<Scheme> schemeList = new ArrayList<>();
    Map<Scheme, Integer> longest = new HashMap<>();
    for (String s : schemes) {
      int at = s.indexOf('@');
      Scheme scheme = Scheme.parse(at < 0 ? s : s.substring(0, at));
      schemeList.add(scheme);
      if (at >= 0) {
        longest.put(scheme, Integer.parseInt(s.substring(at + 1)));
      }
    }
    Evaluation evaluation = new Evaluation(taskList, lengths, depths, needles, schemeList, seed, longest, blockSize, span);
    int context = lengths.stream().mapToInt(Integer::intValue).max().orElseThrow() + 64;
    EngineOptions options = EngineOptions.of(model).withBackend(Choices.backend(backend)).withThreads(threads)
        .withContextLength(context).withKvPrecision(KvPrecision.parse(kvPrecision)).withPrefillChunk(prefillChunk);
    try (Engine engine = Engine.load(options)) {
      err.println("model " + engine.modelName() + " on " + engine.backendName() + ", trained window "
          + engine.config().maxPositionEmbeddings());
      List<EvalResult> results = evaluation.run(engine, haystack == null ? null : readHaystack(haystack), line -> {
        err.println(line);
        err.flush();
      });
      Files.createDirectories(out);
      Files.writeString(out.resolve("results.json"), Reports.json(results));
      writeReports(results, err);
    }
    return 0;
  }

  private void writeReports(List<EvalResult> results, PrintWriter err) throws java.io.IOException {
    Files.createDirectories(out);
    String table = Reports.table(results) + "\nMean prefill time per case:\n\n" + Reports.timings(results);
    Files.writeString(out.resolve("results.md"), table);
    spec.commandLine().getOut().print(table);
    spec.commandLine().getOut().flush();
    try {
      List<Path> pngs = Heatmaps.write(results, out);
      err.println("wrote results.md and " + pngs.size() + " heatmap(s) to " + out);
    } catch (LinkageError e) {
      // A runtime without java.desktop (jlinked for a server) has no image classes.
      err.println("wrote results.md; no heatmaps (" + e + "): draw them elsewhere with --render "
          + out.resolve("results.json"));
    }
  }

  private static String readHaystack(Path path) throws java.io.IOException {
    if (!Files.isDirectory(path)) {
      return Files.readString(path, StandardCharsets.UTF_8);
    }
    List<Path> files = new ArrayList<>();
    try (Stream<Path> s = Files.list(path)) {
      s.filter(p -> p.toString().endsWith(".txt")).sorted().forEach(files::add);
    }
    if (files.isEmpty()) {
      throw new IllegalArgumentException("no .txt files in " + path);
    }
    StringBuilder b = new StringBuilder();
    for (Path f : files) {
      b.append(Files.readString(f, StandardCharsets.UTF_8)).append("\n\n");
    }
    return b.toString();
  }
}
