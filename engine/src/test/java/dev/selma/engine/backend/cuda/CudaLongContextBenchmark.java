package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.eval.Scheme;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Long-prompt prefill of a real model on the GPU: for each length and evaluation scheme, a prompt of
 * random tokens streamed through the model in chunks, then a few decode steps; prints seconds,
 * tokens/s, the KV cache and the peak GPU memory. With {@code -Dselma.cuda.profile=true} it also prints
 * where each run's time went, by kernel (every launch then runs alone, so the totals are slower).
 *
 * <pre>java ... CudaLongContextBenchmark model.gguf 131072,1048576 select-merge-reindexed,dense [chunk]</pre>
 */
public final class CudaLongContextBenchmark {
  private CudaLongContextBenchmark() {}

  public static void main(String[] args) throws Exception {
    Path model = Path.of(args[0]);
    int[] lengths = Arrays.stream(args[1].split(",")).mapToInt(Integer::parseInt).toArray();
    String[] schemes = args[2].split(",");
    int chunk = args.length > 3 ? Integer.parseInt(args[3]) : 4096;
    int steps = 8;
    try (ModelFiles files = ModelLoader.open(model);
        CudaBackend gpu = CudaBackend.open(CudaOptions.defaults())) {
      Llama llama = new Llama(files.config(), files.weights(), gpu);
      int trained = files.config().maxPositionEmbeddings();
      System.out.printf(Locale.ROOT, "%s on %s, trained window %d, chunks of %d%n", model.getFileName(), gpu.name(),
          trained, chunk);
      gpu.profile();
      for (int length : lengths) {
        int[] prompt = new SplittableRandom(length).ints(length, 3, files.config().vocabSize()).toArray();
        for (String label : schemes) {
          AttentionConfig config = Scheme.parse(label).config(length, trained, AttentionConfig.DEFAULT_BLOCK_SIZE);
          try (Sequence seq = llama.newSequence(length + steps + 1, chunk)) {
            seq.attention(config);
            long t0 = System.nanoTime();
            float[] logits = null;
            for (int from = 0; from < length; from += chunk) {
              logits = seq.append(Arrays.copyOfRange(prompt, from, Math.min(length, from + chunk)));
            }
            double prefill = (System.nanoTime() - t0) / 1e9;
            String prefillProfile = gpu.profile();
            long d0 = System.nanoTime();
            int token = argmax(logits);
            for (int i = 0; i < steps; i++) {
              token = argmax(seq.append(new int[] {token}));
            }
            double decode = (System.nanoTime() - d0) / 1e9;
            System.out.printf(Locale.ROOT, "%-24s %8d tokens: prefill %8.2f s (%9.0f tokens/s), decode %6.1f tokens/s, "
                    + "KV %.2f GB, peak GPU %.2f GB%n", label, length, prefill, length / prefill, steps / decode,
                seq.cache().bytes() / 1e9, gpu.peakDeviceBytes() / 1e9);
            if (!prefillProfile.isEmpty()) {
              System.out.print("prefill profile:\n" + prefillProfile + "decode profile:\n" + gpu.profile());
            }
          }
        }
      }
    }
  }

  private static int argmax(float[] x) {
    int best = 0;
    for (int i = 1; i < x.length; i++) {
      if (x[i] > x[best]) {
        best = i;
      }
    }
    return best;
  }
}
