package dev.selma.engine.kv;

/**
 * How the KV cache stores keys and values.
 *
 * <p>fp8 halves the GPU memory and the host-tier bytes of bf16 pages: what lets a million tokens of an
 * 8B model fit one GPU. Each (token, KV head) row of keys and of values is divided by its own scale,
 * its largest magnitude over 448 (e4m3's largest finite value), and rounded to e4m3: a relative error
 * of at most 2^-4 per element, which attention averages over the head's dimensions.
 */
public enum KvPrecision {
  /** The backend's own: bf16 on the GPU (fp32 in its fp32 mode), fp32 on the CPU. */
  AUTO,
  /**
   * fp8 e4m3 with an fp32 scale per row. The CPU backend rounds to the same values but keeps them as
   * fp32 (it saves no memory there): it is the reference the GPU's fp8 pages are tested against.
   */
  FP8;

  /** The precision a configuration names ({@code auto}, {@code fp8}), with a clear error otherwise. */
  public static KvPrecision parse(String name) {
    for (KvPrecision p : values()) {
      if (p.name().equalsIgnoreCase(name.strip())) {
        return p;
      }
    }
    throw new IllegalArgumentException("unknown KV precision '" + name + "'; expected auto or fp8");
  }
}
