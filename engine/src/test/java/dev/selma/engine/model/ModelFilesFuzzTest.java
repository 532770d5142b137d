package dev.selma.engine.model;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Truncated and corrupted model files must either load or fail with an {@link IOException} that names
 * the file: never another exception, an error, or a hang. Each case opens the damaged file and reads
 * every tensor completely, on a worker thread with a time limit.
 */
class ModelFilesFuzzTest {
  private static final long SEED = 20250101L;
  private static final int TIMEOUT_SECONDS = 20;

  @TempDir Path dir;
  private ExecutorService worker;
  private int succeeded;
  private int rejected;

  @FunctionalInterface
  interface Load {
    void run(Path file) throws IOException;
  }

  @BeforeEach
  void startWorker() {
    worker = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "fuzz-case");
      t.setDaemon(true);
      return t;
    });
  }

  @AfterEach
  void stopWorker() {
    worker.shutdownNow();
  }

  /** Reads every element of every tensor, row by row. */
  private static void readAll(Map<String, Tensor> tensors) {
    for (Tensor t : tensors.values()) {
      for (long r = 0; r < t.rows(); r++) {
        Quants.dequantizeRow(t, r);
      }
    }
  }

  private static void openGguf(Path file) throws IOException {
    try (GgufFile gguf = GgufFile.open(file)) {
      readAll(gguf.tensors());
      for (String key : gguf.metadata().keys()) {
        gguf.metadata().get(key);
      }
    }
  }

  private static void openSafetensors(Path file) throws IOException {
    try (Safetensors st = Safetensors.open(file)) {
      readAll(st.tensors());
    }
  }

  private static void openModel(Path path) throws IOException {
    try (ModelFiles m = ModelLoader.open(path)) {
      LlamaWeights w = m.weights();
      Map<String, Tensor> all = new LinkedHashMap<>();
      all.put("embedding", w.tokenEmbedding());
      all.put("output", w.output());
      all.put("norm", w.outputNorm());
      for (LlamaWeights.Layer l : w.layers()) {
        for (Tensor t : new Tensor[] {l.wq(), l.wk(), l.wv(), l.wo(), l.wGate(), l.wUp(), l.wDown()}) {
          all.put(t.name(), t);
        }
      }
      readAll(all);
    }
  }

  /** Writes {@code bytes} to {@code file}, loads it, and classifies the outcome. */
  private void check(String label, Path file, byte[] bytes, Path named, Load load) throws IOException {
    Files.write(file, bytes);
    Future<?> outcome = worker.submit(() -> {
      load.run(named);
      return null;
    });
    try {
      outcome.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
      succeeded++;
    } catch (TimeoutException e) {
      outcome.cancel(true);
      fail(label + ": no result after " + TIMEOUT_SECONDS + " s");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail(label + ": interrupted");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof ModelFormatException
          || (cause instanceof IOException && String.valueOf(cause.getMessage()).contains(file.getFileName().toString()))) {
        rejected++;
      } else {
        throw new AssertionError(label + ": unexpected " + cause, cause);
      }
    }
  }

  /** The cases must have exercised both paths, or the fuzzing proves nothing. */
  private void assertBothOutcomes() {
    assertTrue(succeeded > 0 && rejected > 0, succeeded + " loaded, " + rejected + " rejected");
  }

  /** Every prefix shorter than {@code dense} bytes (the header), then every {@code stride}-th. */
  private void truncations(String name, byte[] original, Path file, Path named, Load load, int dense, int stride)
      throws IOException {
    for (int length = 0; length < original.length; length += length < dense ? 1 : stride) {
      check(name + " truncated to " + length, file, Arrays.copyOf(original, length), named, load);
    }
  }

  /**
   * Copies with 1–4 bytes replaced. Half the cases hit the first {@code hotBytes} (headers, where
   * damage matters); values favour 0, 0xFF and small numbers, the usual extremes of length fields.
   */
  private void mutations(String name, byte[] original, Path file, Path named, Load load, int cases, int hotBytes,
      Random random) throws IOException {
    for (int c = 0; c < cases; c++) {
      byte[] bytes = original.clone();
      int flips = 1 + random.nextInt(4);
      StringBuilder what = new StringBuilder();
      for (int f = 0; f < flips; f++) {
        int at = random.nextBoolean() ? random.nextInt(Math.min(hotBytes, bytes.length)) : random.nextInt(bytes.length);
        byte value = switch (random.nextInt(4)) {
          case 0 -> 0;
          case 1 -> (byte) 0xFF;
          case 2 -> (byte) random.nextInt(16);
          default -> (byte) random.nextInt(256);
        };
        bytes[at] = value;
        what.append(' ').append(at).append('=').append(value & 0xFF);
      }
      check(name + " with bytes" + what, file, bytes, named, load);
    }
  }

  @Test
  void damagedGgufFilesFailCleanly() throws IOException {
    Random random = new Random(SEED);
    Path sample = GgufFileTest.writeSample(dir.resolve("sample.gguf"));
    byte[] original = Files.readAllBytes(sample);
    Path file = dir.resolve("fuzz.gguf");
    truncations("gguf", original, file, file, ModelFilesFuzzTest::openGguf, 1500, 7);
    mutations("gguf", original, file, file, ModelFilesFuzzTest::openGguf, 2000, 1500, random);
    assertBothOutcomes();
  }

  @Test
  void damagedGgufModelsFailCleanly() throws IOException {
    Random random = new Random(SEED + 1);
    Path model = dir.resolve("model.gguf");
    try (ModelFiles hf = ModelLoader.open(TinyHfModel.llama().withSizes(32, 64).write(dir.resolve("hf"), 1))) {
      HfToGguf.convert(hf, model, GgmlType.Q8_0, Map.of());
    }
    byte[] original = Files.readAllBytes(model);
    Path file = dir.resolve("fuzz-model.gguf");
    truncations("gguf model", original, file, file, ModelFilesFuzzTest::openModel, 0, 97);
    mutations("gguf model", original, file, file, ModelFilesFuzzTest::openModel, 1000, 1200, random);
    assertBothOutcomes();
  }

  @Test
  void damagedSafetensorsFilesFailCleanly() throws IOException {
    Random random = new Random(SEED + 2);
    Map<String, SafetensorsFixture.Entry> t = new LinkedHashMap<>();
    t.put("a.weight", SafetensorsFixture.floats("BF16", new long[] {4, 8}, GgufFileTest.randomFloats(random, 32)));
    t.put("b.weight", SafetensorsFixture.floats("F16", new long[] {16}, GgufFileTest.randomFloats(random, 16)));
    t.put("c.bias", SafetensorsFixture.floats("F32", new long[] {2, 2, 2}, GgufFileTest.randomFloats(random, 8)));
    byte[] original = Files.readAllBytes(SafetensorsFixture.write(dir.resolve("s.safetensors"), t, Map.of("format", "pt")));
    Path file = dir.resolve("fuzz.safetensors");
    truncations("safetensors", original, file, file, ModelFilesFuzzTest::openSafetensors, 400, 3);
    mutations("safetensors", original, file, file, ModelFilesFuzzTest::openSafetensors, 1500, 300, random);
    assertBothOutcomes();
  }

  @Test
  void damagedHuggingFaceFoldersFailCleanly() throws IOException {
    Random random = new Random(SEED + 3);
    Path folder = TinyHfModel.llama().withSizes(32, 64).write(dir.resolve("hf"), 1);
    Path config = folder.resolve(HfConfig.FILE_NAME);
    byte[] originalConfig = Files.readAllBytes(config);
    truncations("config.json", originalConfig, config, folder, ModelFilesFuzzTest::openModel, originalConfig.length, 1);
    mutations("config.json", originalConfig, config, folder, ModelFilesFuzzTest::openModel, 1000, originalConfig.length,
        random);
    Files.write(config, originalConfig);
    Path weights = folder.resolve(Safetensors.SINGLE_FILE);
    byte[] originalWeights = Files.readAllBytes(weights);
    mutations("model.safetensors", originalWeights, weights, folder, ModelFilesFuzzTest::openModel, 600, 1500, random);
    assertBothOutcomes();
  }

  /** The Hugging Face fixture models (files transformers wrote) and their GGUF conversions. */
  @Test
  void damagedTransformersFixturesFailCleanly() throws IOException {
    Random random = new Random(SEED + 4);
    for (String name : new String[] {"qwen2", "llama31"}) {
      Path source = Path.of("src/test/resources/fixtures/hf", name);
      Path folder = dir.resolve("fixture-" + name);
      Files.createDirectories(folder);
      for (String f : new String[] {HfConfig.FILE_NAME, Safetensors.SINGLE_FILE}) {
        Files.copy(source.resolve(f), folder.resolve(f));
      }
      Path weights = folder.resolve(Safetensors.SINGLE_FILE);
      byte[] original = Files.readAllBytes(weights);
      truncations(name + " model.safetensors", original, weights, folder, ModelFilesFuzzTest::openModel, 300, 4099);
      mutations(name + " model.safetensors", original, weights, folder, ModelFilesFuzzTest::openModel, 300, 600, random);
      Files.write(weights, original);
      Path gguf = dir.resolve(name + ".gguf");
      try (ModelFiles hf = ModelLoader.open(folder)) {
        HfToGguf.convert(hf, gguf, GgmlType.Q4_0, Map.of());
      }
      byte[] ggufBytes = Files.readAllBytes(gguf);
      Path file = dir.resolve("fuzz-" + name + ".gguf");
      mutations(name + " gguf", ggufBytes, file, file, ModelFilesFuzzTest::openModel, 300, 1500, random);
    }
    assertBothOutcomes();
  }
}
