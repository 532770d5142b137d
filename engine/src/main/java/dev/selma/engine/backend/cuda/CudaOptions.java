package dev.selma.engine.backend.cuda;

import dev.selma.engine.kv.KvPrecision;

/**
 * How the CUDA backend holds and loads a model.
 *
 * @param precision element type of weights and KV cache on the GPU
 * @param dummyWeights generate random weights on the GPU instead of uploading the file's (as vLLM's
 *     {@code --load-format dummy}): for benchmarks of real shapes without real files
 * @param seed seed of the dummy weights
 * @param device CUDA device ordinal
 * @param specialisedAttention attention kernels for the common cases where they apply: prefill on
 *     tensor cores ({@code attention_tc.cu}) and one-token decode ({@code attention_decode.cu}); off,
 *     every plan runs on the general kernel ({@code attention.cu}), for comparisons of the two
 * @param kvPrecision KV pages of the precision's type, or fp8 with a scale per row
 * @param graphs decode steps recorded as a CUDA graph and replayed, which spares the GPU a gap between
 *     each of a step's ~300 kernels; off, every kernel is launched on its own, for comparisons
 */
public record CudaOptions(Precision precision, boolean dummyWeights, long seed, int device,
    boolean specialisedAttention, KvPrecision kvPrecision, boolean graphs) {

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
    if (kvPrecision == null) {
      throw new IllegalArgumentException("KV precision must be given");
    }
    if (device < 0) {
      throw new IllegalArgumentException("device must be >= 0, got " + device);
    }
  }

  /** bf16, the file's weights, device 0, specialised attention kernels, bf16 KV pages, CUDA graphs. */
  public static CudaOptions defaults() {
    return new CudaOptions(Precision.BF16, false, 0, 0, true, KvPrecision.AUTO, true);
  }

  public CudaOptions withPrecision(Precision p) {
    return new CudaOptions(p, dummyWeights, seed, device, specialisedAttention, kvPrecision, graphs);
  }

  public CudaOptions withDummyWeights(long seed) {
    return new CudaOptions(precision, true, seed, device, specialisedAttention, kvPrecision, graphs);
  }

  public CudaOptions withSpecialisedAttention(boolean on) {
    return new CudaOptions(precision, dummyWeights, seed, device, on, kvPrecision, graphs);
  }

  public CudaOptions withKvPrecision(KvPrecision p) {
    return new CudaOptions(precision, dummyWeights, seed, device, specialisedAttention, p, graphs);
  }

  public CudaOptions withGraphs(boolean on) {
    return new CudaOptions(precision, dummyWeights, seed, device, specialisedAttention, kvPrecision, on);
  }
}
