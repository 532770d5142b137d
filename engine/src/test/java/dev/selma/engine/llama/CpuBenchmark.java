package dev.selma.engine.llama;

import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.RopeScaling;
import dev.selma.engine.model.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Prefill and decode speed of the CPU backend on a random ~125M-parameter Llama (d 768, 12 layers,
 * 12 heads / 4 KV heads, FFN 2048, vocab 32000) in F32 and Q8_0, on one thread and on all. Prints a
 * table and writes {@code target/cpu-benchmark.json}.
 *
 * <pre>./mvnw -q -pl engine test-compile exec:exec \
 *   -Dexec.args="--add-modules jdk.incubator.vector -Xmx8g -cp %classpath dev.selma.engine.llama.CpuBenchmark"</pre>
 */
public final class CpuBenchmark {
  private static final int PROMPT = 256, DECODE = 32;

  public static void main(String[] args) throws IOException {
    ModelConfig c = new ModelConfig("llama", 32000, 768, 2048, 12, 12, 4, 64, 1e-5, 10000, RopeScaling.NONE,
        4096, false, false, ModelConfig.RopeStyle.HALF);
    LlamaWeights f32 = RandomModel.weights(c, 1);
    LlamaWeights q8 = RandomModel.quantized(f32, GgmlType.Q8_0);
    long params = 0;
    for (Tensor t : tensors(f32)) {
      params += t.elementCount();
    }
    int all = Runtime.getRuntime().availableProcessors();
    String cpu = cpuModel();
    System.out.printf(Locale.ROOT, "model: %.1fM parameters; machine: %s, %d processors%n", params / 1e6, cpu, all);
    System.out.printf(Locale.ROOT, "%-6s %-8s %16s %16s%n", "type", "threads", "prefill tok/s", "decode tok/s");
    StringBuilder json = new StringBuilder("{\"parameters\":" + params + ",\"cpu\":\"" + cpu + "\",\"processors\":"
        + all + ",\"prompt\":" + PROMPT + ",\"decode\":" + DECODE + ",\"results\":[");
    String sep = "";
    for (var entry : List.of(new Object[] {"F32", f32}, new Object[] {"Q8_0", q8})) {
      for (int threads : all == 1 ? new int[] {1} : new int[] {1, all}) {
        try (CpuBackend backend = new CpuBackend(threads)) {
          Llama model = new Llama(c, (LlamaWeights) entry[1], backend);
          run(model, 16, 4); // warm-up: JIT-compile the kernels
          double[] r = run(model, PROMPT, DECODE);
          System.out.printf(Locale.ROOT, "%-6s %-8d %16.1f %16.2f%n", entry[0], threads, r[0], r[1]);
          json.append(sep).append(String.format(Locale.ROOT,
              "{\"type\":\"%s\",\"threads\":%d,\"prefill_tokens_per_s\":%.2f,\"decode_tokens_per_s\":%.3f}",
              entry[0], threads, r[0], r[1]));
          sep = ",";
        }
      }
    }
    Path out = Path.of("target", "cpu-benchmark.json");
    Files.createDirectories(out.getParent());
    Files.writeString(out, json.append("]}\n").toString());
    System.out.println("wrote " + out.toAbsolutePath());
  }

  /** Prefill tokens/s and decode tokens/s. */
  private static double[] run(Llama model, int prompt, int decode) {
    int[] tokens = new SplittableRandom(7).ints(prompt, 0, model.config().vocabSize()).toArray();
    try (Sequence s = model.newSequence(prompt + decode + 1, 256)) {
      long t0 = System.nanoTime();
      float[] logits = s.append(tokens);
      long t1 = System.nanoTime();
      for (int i = 0; i < decode; i++) {
        logits = s.append(new int[] {dev.selma.engine.generate.Sampler.argmax(logits)});
      }
      long t2 = System.nanoTime();
      return new double[] {prompt * 1e9 / (t1 - t0), decode * 1e9 / (t2 - t1)};
    }
  }

  private static List<Tensor> tensors(LlamaWeights w) {
    List<Tensor> list = new ArrayList<>(List.of(w.tokenEmbedding(), w.outputNorm(), w.output()));
    for (LlamaWeights.Layer l : w.layers()) {
      list.addAll(List.of(l.attnNorm(), l.wq(), l.wk(), l.wv(), l.wo(), l.ffnNorm(), l.wGate(), l.wUp(), l.wDown()));
    }
    return list;
  }

  private static String cpuModel() throws IOException {
    Path info = Path.of("/proc/cpuinfo");
    if (Files.exists(info)) {
      for (String line : Files.readAllLines(info)) {
        if (line.startsWith("model name")) {
          return line.substring(line.indexOf(':') + 1).trim();
        }
      }
    }
    return System.getProperty("os.arch");
  }
}
