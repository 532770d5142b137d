package dev.selma.engine.cli;

import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import dev.selma.engine.eval.EvalResult;
import dev.selma.engine.eval.Evaluation;
import dev.selma.engine.eval.Reports;
import dev.selma.engine.eval.Scheme;
import dev.selma.engine.eval.Task;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
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

  @Option(names = "--tasks", split = ",", defaultValue = "passkey", description = "passkey, niah-single, niah-multikey")
  List<String> tasks;

  @Option(names = "--lengths", split = ",", defaultValue = "1024,2048,4096", description = "prompt lengths in tokens")
  List<Integer> lengths;

  @Option(names = "--depths", split = ",", defaultValue = "0,0.25,0.5,0.75,1") List<Double> depths;

  @Option(names = "--needles", defaultValue = "2", description = "needles per length and depth") int needles;

  @Option(names = "--schemes", split = ",", defaultValue = "dense,select-merge-reindexed",
      description = "dense, self-extend, select-merge, select-merge-reindexed, select-merge-self-extend")
  List<String> schemes;

  @Option(names = "--haystack", description = "text file or folder of .txt files (prose for the needle tasks)")
  Path haystack;

  @Option(names = "--seed", defaultValue = "1") long seed;

  @Option(names = {"-t", "--threads"}, defaultValue = "0") int threads;

  @Option(names = "--backend", defaultValue = "auto") String backend;

  @Option(names = "--out", defaultValue = "eval-results", description = "folder for results.json, results.md and heatmaps")
  Path out;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    List<Task> taskList = tasks.stream().map(t -> {
      try {
        return Task.valueOf(t.toUpperCase(Locale.ROOT).replace('-', '_'));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("unknown task '" + t + "'; use passkey, niah-single or niah-multikey");
      }
    }).toList();
    Evaluation evaluation = new Evaluation(taskList, lengths, depths, needles,
        schemes.stream().map(Scheme::parse).toList(), seed);
    int context = lengths.stream().mapToInt(Integer::intValue).max().orElseThrow() + 64;
    EngineOptions options = EngineOptions.of(model).withBackend(Choices.backend(backend)).withThreads(threads)
        .withContextLength(context);
    try (Engine engine = Engine.load(options)) {
      err.println("model " + engine.modelName() + " on " + engine.backendName() + ", trained window "
          + engine.config().maxPositionEmbeddings());
      List<EvalResult> results = evaluation.run(engine, haystack == null ? null : readHaystack(haystack), line -> {
        err.println(line);
        err.flush();
      });
      Files.createDirectories(out);
      Files.writeString(out.resolve("results.json"), Reports.json(results));
      String table = Reports.table(results);
      Files.writeString(out.resolve("results.md"), table);
      List<Path> pngs = Reports.heatmaps(results, out);
      spec.commandLine().getOut().print(table);
      err.println("wrote " + out.resolve("results.json") + ", results.md and " + pngs.size() + " heatmap(s)");
    }
    return 0;
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
