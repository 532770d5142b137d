package dev.selma.engine.backend.cuda;

import dev.selma.engine.llama.Llama;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Time to put a model file's weights on the GPU: opening the file (memory-mapped), then every tensor
 * uploaded (bf16 as it is; other types converted), until the GPU has them. A first pass reads the file
 * from disk or the page cache as it comes; the second, with the file's pages cached, is the upload.
 *
 * <pre>java ... dev.selma.engine.backend.cuda.CudaLoadBenchmark FILE.gguf</pre>
 *
 * ({@code tools/write_shapes_gguf.py} writes a file of Llama-3-8B shapes without a download.)
 */
public final class CudaLoadBenchmark {
  private CudaLoadBenchmark() {}

  public static void main(String[] args) throws Exception {
    Path file = Path.of(args[0]);
    double gb = Files.size(file) / 1e9;
    for (int pass = 1; pass <= 2; pass++) {
      try (CudaBackend gpu = CudaBackend.open(CudaOptions.defaults())) {
        long t0 = System.nanoTime();
        try (ModelFiles files = ModelLoader.open(file)) {
          long t1 = System.nanoTime();
          new Llama(files.config(), files.weights(), gpu);
          gpu.synchronize();
          long t2 = System.nanoTime();
          System.out.printf(Locale.ROOT, "pass %d: %s (%.2f GB) opened in %.2f s, weights on the GPU in %.2f s "
              + "(%.1f GB/s); %.2f GB of GPU memory%n", pass, file.getFileName(), gb, (t1 - t0) / 1e9, (t2 - t1) / 1e9,
              gb / ((t2 - t1) / 1e9), gpu.peakDeviceBytes() / 1e9);
        }
      }
    }
  }
}
