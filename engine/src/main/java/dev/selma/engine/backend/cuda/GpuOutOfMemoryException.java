package dev.selma.engine.backend.cuda;

/**
 * The GPU has too little free memory for an allocation. Nothing was allocated and the backend stays
 * usable: a smaller request (a shorter context, fewer tokens per chunk) can follow.
 */
public final class GpuOutOfMemoryException extends CudaException {
  private final long needed, free, total;

  GpuOutOfMemoryException(String what, long needed, long free, long total, long heldBySelma) {
    this(what, needed, free, total, heldBySelma, "");
  }

  /** {@code advice} ends the message: what would fit instead. */
  GpuOutOfMemoryException(String what, long needed, long free, long total, long heldBySelma, String advice) {
    super("out of GPU memory for " + what + ": needs " + gib(needed) + ", " + gib(free) + " free of " + gib(total)
        + " (Selma holds " + gib(heldBySelma) + ")" + advice);
    this.needed = needed;
    this.free = free;
    this.total = total;
  }

  /** Bytes the allocation needed. */
  public long needed() {
    return needed;
  }

  /** Bytes free on the device when it failed. */
  public long free() {
    return free;
  }

  public long total() {
    return total;
  }

  static String gib(long bytes) {
    return String.format(java.util.Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
  }
}
