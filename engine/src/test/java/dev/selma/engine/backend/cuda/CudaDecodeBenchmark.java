package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.backend.Logits;
import dev.selma.engine.backend.Token;
import dev.selma.engine.eval.Scheme;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.ModelConfig;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Batch-1 speed of a real architecture with dummy bf16 weights: weight generation, an untimed warm-up
 * prefill, the timed prefill of a context, then decode steps as greedy generation runs them, timed after
 * eight untimed ones: each appends the token the step before chose on the GPU, queued before the host
 * reads that token, and the host reads it while the step runs ({@code -Dselma.bench.ahead=false}: each
 * step appends a token the host has, one of a fixed sequence, and waits for its choice before the next).
 * Prints tokens/s and, given the device's measured copy bandwidth, the weight-read floor.
 *
 * <pre>java ... dev.selma.engine.backend.cuda.CudaDecodeBenchmark [arch] [context] [steps] [copy GB/s] [prefill chunk]
 * [specialised|general] [scheme] [auto|fp8] [bf16|q8_0|q4_0|q4_k]</pre>
 *
 * <p>{@code scheme} is one of {@code selma eval}'s ({@link Scheme}), sized to the architecture's context
 * length as its trained window; dense when absent. Then the KV pages' precision, and the type of the
 * weight matrices (Q8_0, Q4_0, Q4_K: kept quantized on the GPU). With
 * {@code -Dselma.bench.json=FILE} the results are also appended to FILE as one JSON object a line;
 * {@code -Dselma.bench.graphs=false} launches decode steps kernel by kernel instead of replaying CUDA graphs.
 */
public final class CudaDecodeBenchmark {
  private CudaDecodeBenchmark() {}

  /**
   * A sampling profiler of one thread without JFR (the GPU machine's runtime is jlinked): every 0.2 ms
   * it records the thread's innermost frames, and reports the most frequent innermost Selma frame and
   * the frame that was innermost overall.
   */
  static final class HostSampler {
    private final Thread target;
    private final java.util.Map<String, Integer> selma = new java.util.HashMap<>(), top = new java.util.HashMap<>();
    private final Thread thread;
    private volatile boolean running = true;
    private int samples;

    private HostSampler(Thread target) {
      this.target = target;
      this.thread = new Thread(this::run, "host-sampler");
      thread.setDaemon(true);
    }

    static HostSampler start(Thread target) {
      HostSampler s = new HostSampler(target);
      s.thread.start();
      return s;
    }

    private void run() {
      while (running) {
        StackTraceElement[] st = target.getStackTrace();
        if (st.length > 0) {
          samples++;
          top.merge(st[0].getClassName() + "." + st[0].getMethodName(), 1, Integer::sum);
          for (StackTraceElement e : st) {
            if (e.getClassName().startsWith("dev.selma")) {
              selma.merge(e.getClassName().replace("dev.selma.engine.", "") + "." + e.getMethodName() + ":"
                  + e.getLineNumber(), 1, Integer::sum);
              break;
            }
          }
        }
        java.util.concurrent.locks.LockSupport.parkNanos(200_000);
      }
    }

    String stop() {
      running = false;
      StringBuilder b = new StringBuilder();
      for (var m : java.util.List.of(top, selma)) {
        b.append(m == top ? "innermost frames:\n" : "innermost Selma frames:\n");
        m.entrySet().stream().sorted((x, y) -> y.getValue() - x.getValue()).limit(25).forEach(e -> b.append(
            String.format(Locale.ROOT, "  %5.1f %%  %s%n", 100.0 * e.getValue() / samples, e.getKey())));
      }
      return b.toString();
    }
  }

  /** Decode steps run before the timed ones. */
  private static final int WARMUP = 8;

  /** The most tokens of the untimed prefill run before the timed one. */
  private static final int PREFILL_WARMUP_TOKENS = 32768;

  public static void main(String[] args) throws java.io.IOException {
    String arch = args.length > 0 ? args[0] : "llama-3-8b";
    int context = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
    int steps = args.length > 2 ? Integer.parseInt(args[2]) : 64;
    double bandwidth = args.length > 3 ? Double.parseDouble(args[3]) : 0;
    int chunk = args.length > 4 ? Integer.parseInt(args[4]) : 512;
    boolean specialised = args.length <= 5 || args[5].equals("specialised");
    Scheme scheme = args.length > 6 ? Scheme.parse(args[6]) : Scheme.DENSE;
    KvPrecision kv = args.length > 7 ? KvPrecision.parse(args[7]) : KvPrecision.AUTO;
    GgmlType matrices = args.length > 8 ? GgmlType.valueOf(args[8].toUpperCase(Locale.ROOT)) : GgmlType.BF16;
    ModelConfig config = DummyWeights.architecture(arch);
    try (CudaBackend gpu = CudaBackend.open(
        CudaOptions.defaults().withDummyWeights(1).withSpecialisedAttention(specialised).withKvPrecision(kv)
            .withGraphs(!"false".equals(System.getProperty("selma.bench.graphs"))))) {
      long t0 = System.nanoTime();
      Llama model = new Llama(config, DummyWeights.tensors(config, matrices), gpu);
      gpu.synchronize();
      double loadSeconds = (System.nanoTime() - t0) / 1e9;
      long weightBytes = gpu.deviceBytes();
      // Bytes a decode step must read: every weight but the embedding table, of which it reads one row.
      long embedding = CudaWeight.keptQuantized(matrices)
          ? CudaWeight.quantizedBytes(matrices, config.vocabSize(), config.hiddenSize())
          : 2L * config.vocabSize() * config.hiddenSize();
      long stepBytes = config.tieWordEmbeddings() ? weightBytes : weightBytes - embedding;
      System.out.printf(Locale.ROOT, "%s on %s: %.2f GB of weights generated in %.2f s%n", arch, gpu.name(),
          weightBytes / 1e9, loadSeconds);

      int[] prompt = new SplittableRandom(3).ints(context, 0, config.vocabSize()).toArray();
      AttentionConfig attention = scheme.config(context, config.maxPositionEmbeddings(),
          AttentionConfig.DEFAULT_BLOCK_SIZE);
      // An untimed prefill first, as the PyTorch peer warms up: the JIT compiles the forward pass, cuBLAS
      // chooses its algorithms and the memory pool fills. Up to 32K tokens, the same prompt (the peer times
      // its second run); longer contexts warm up on their first 32K tokens.
      int warmTokens = Math.min(context, PREFILL_WARMUP_TOKENS);
      try (Sequence warm = model.newSequence(warmTokens, chunk)) {
        warm.attention(attention);
        long w0 = System.nanoTime();
        warm.appendToSample(Arrays.copyOf(prompt, warmTokens)).top(1, 0);
        System.out.printf(Locale.ROOT, "warm-up prefill of %d tokens (untimed; the first in this process): %.2f s%n",
            warmTokens, (System.nanoTime() - w0) / 1e9);
      }
      gpu.profile(); // the warm-up's, dropped
      try (Sequence seq = model.newSequence(context + WARMUP + steps + 8, chunk)) {
        seq.attention(attention);
        System.out.println("attention: " + scheme.label() + " " + attention);
        boolean sample = Boolean.getBoolean("selma.bench.sample");
        HostSampler prefillSampler = sample ? HostSampler.start(Thread.currentThread()) : null;
        long p0 = System.nanoTime();
        Logits last = seq.appendToSample(prompt);
        last.top(1, 0); // waits for the prefill
        double prefill = (System.nanoTime() - p0) / 1e9;
        if (prefillSampler != null) {
          System.out.println("prefill: where the host thread was (stack samples every 0.2 ms):\n" + prefillSampler.stop());
        }
        System.out.printf(Locale.ROOT, "prefill %d tokens in chunks of %d (" + (specialised ? "specialised" : "general")
            + " attention kernels): %.2f s, %.0f tokens/s, peak GPU memory %.2f GB%n",
            context, chunk, prefill, context / prefill, gpu.peakDeviceBytes() / 1e9);
        String prefillProfile = gpu.profile(); // under -Dselma.cuda.profile=true; the decode steps' come later
        if (!prefillProfile.isEmpty()) {
          System.out.println("prefill profile (every operation run alone):\n" + prefillProfile);
        }
        double[] ms = new double[steps];
        int token = 1, chosenLast = -1;
        boolean ahead = !"false".equals(System.getProperty("selma.bench.ahead"));
        Token chosen = last.greedy();
        HostSampler sampler = sample ? HostSampler.start(Thread.currentThread()) : null;
        // WARMUP steps first, untimed: the JIT compiles the step's code and the first recorded graphs are made.
        long s0 = System.nanoTime();
        for (int i = -WARMUP; i < steps; i++) {
          if (ahead) {
            Token next = seq.appendToSample(chosen).greedy();
            chosen.id(); // the host has the token while the step for it runs
            chosen = next;
          } else {
            chosenLast = seq.appendToSample(new int[] {token}).top(1, 0).ids()[0];
            token = (token * 31 + 7) % config.vocabSize();
          }
          long s1 = System.nanoTime();
          if (i >= 0) {
            ms[i] = (s1 - s0) / 1e6;
          }
          s0 = s1;
        }
        if (sampler != null) {
          System.out.println("decode: where the host thread was (stack samples every 0.2 ms):\n" + sampler.stop());
        }
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        double median = sorted[steps / 2];
        System.out.printf(Locale.ROOT, "decode at %d context: median %.2f ms/token (%.1f tokens/s), min %.2f, max %.2f%n",
            context, median, 1000 / median, sorted[0], sorted[steps - 1]);
        System.out.println(gpu.graphCounts());
        if (Boolean.getBoolean("selma.bench.verbose")) {
          System.out.println("steps, ms: " + Arrays.toString(ms));
        }
        if (bandwidth > 0) {
          double floorMs = stepBytes / (bandwidth * 1e9) * 1e3;
          System.out.printf(Locale.ROOT, "weight-read floor at %.0f GB/s: %.2f ms/token (%.0f tokens/s); "
              + "decode reaches %.0f %% of it%n", bandwidth, floorMs, 1000 / floorMs, 100 * floorMs / median);
        }
        String profile = gpu.profile();
        if (!profile.isEmpty()) {
          System.out.println("decode profile (every operation run alone):\n" + profile);
        }
        System.out.printf(Locale.ROOT, "peak GPU memory held by Selma: %.2f GB; KV cache %.2f GB; last greedy token %d%n",
            gpu.peakDeviceBytes() / 1e9, seq.cache().bytes() / 1e9, ahead ? chosen.id() : chosenLast);
        String json = System.getProperty("selma.bench.json");
        if (json != null) {
          java.nio.file.Files.writeString(java.nio.file.Path.of(json), String.format(Locale.ROOT,
              "{\"device\": \"%s\", \"arch\": \"%s\", \"context\": %d, \"scheme\": \"%s\", \"kv\": \"%s\", "
                  + "\"weights\": \"%s\", \"chunk\": %d, \"prefill_s\": %.3f, \"decode_ms\": %.3f, \"kv_gb\": %.3f, "
              + "\"peak_gb\": %.3f}%n",
              gpu.name(), arch, context, scheme.label(), kv, matrices, chunk, prefill, median, seq.cache().bytes() / 1e9,
              gpu.peakDeviceBytes() / 1e9), java.nio.file.StandardOpenOption.CREATE,
              java.nio.file.StandardOpenOption.APPEND);
        }
      }
    }
  }
}
