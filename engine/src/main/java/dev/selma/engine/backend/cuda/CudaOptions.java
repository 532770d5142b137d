package dev.selma.engine.backend.cuda;

/**
 * How the CUDA backend holds and loads a model.
 *
 * @param precision element type of weights and KV cache on the GPU
 * @param dummyWeights generate random weights on the GPU instead of uploading the file's (as vLLM's
 *     {@code --load-format dummy}): for benchmarks of real shapes without real files
 * @param seed seed of the dummy weights
 * @param device CUDA device ordinal
 */
public record CudaOptions(Precision precision, boolean dummyWeights, long seed, int device) {

  /** Element type of weights and KV cache on the GPU; activations and accumulation are fp32 in both. */
  public enum Precision {
    /** bf16 weights and KV cache, bf16 GEMMs with fp32 accumulation: the default. */
    BF16,
    /** fp32 everywhere: for exactness tests against the CPU reference. */
    FP32
  }

  public CudaOptions {
    if (precision == null) {
      throw new IllegalArgumentException("precision must be given");
    }
    if (device < 0) {
      throw new IllegalArgumentException("device must be >= 0, got " + device);
    }
  }

  /** bf16, the file's weights, device 0. */
  public static CudaOptions defaults() {
    return new CudaOptions(Precision.BF16, false, 0, 0);
  }

  public CudaOptions withPrecision(Precision p) {
    return new CudaOptions(p, dummyWeights, seed, device);
  }

  public CudaOptions withDummyWeights(long seed) {
    return new CudaOptions(precision, true, seed, device);
  }
}
