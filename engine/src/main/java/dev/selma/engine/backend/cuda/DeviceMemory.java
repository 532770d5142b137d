package dev.selma.engine.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import jcuda.driver.CUresult;

/**
 * Every device allocation of a backend: weights, activations, KV pages, scratch. Released blocks are
 * kept by size and handed out again (sequences come and go with the same shapes, and cuMemAlloc costs
 * ~150 µs), and given back to the driver when an allocation would otherwise fail.
 *
 * <p>Reuse is safe without waiting: all work is ordered on the backend's one stream, so a block's next
 * user runs after its last. Thread-safe, so that a GC cleaner may release activations.
 */
final class DeviceMemory implements AutoCloseable {
  private final CudaDevice device;
  private final Map<Long, ArrayDeque<DeviceBuffer>> idle = new HashMap<>();
  private final Map<DeviceBuffer, Boolean> live = new IdentityHashMap<>();
  private long liveBytes, idleBytes, peakBytes;

  DeviceMemory(CudaDevice device) {
    this.device = device;
  }

  /**
   * A block of at least {@code bytes}, contents undefined.
   *
   * @param what what it is for, for the out-of-memory message
   * @throws GpuOutOfMemoryException if the device cannot provide it even after the pool's idle blocks
   *     are freed; nothing is allocated then
   */
  synchronized DeviceBuffer allocate(long bytes, String what) {
    long size = Math.max(256, (bytes + 255) & ~255L);
    ArrayDeque<DeviceBuffer> free = idle.get(size);
    DeviceBuffer b = free == null ? null : free.poll();
    if (b != null) {
      idleBytes -= size;
    } else {
      CudaDevice.Allocation p = new CudaDevice.Allocation();
      int rc = cuMemAlloc(p, size);
      // Freeing the pool waits for the stream, which a recorded step may not: it fails then, as it
      // would with nothing idle, and the step's caller hears how much was needed and free.
      if (rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY && idleBytes > 0 && !device.recording()) {
        trim();
        rc = cuMemAlloc(p, size);
      }
      if (rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
        long[] info = device.memoryInfo();
        throw new GpuOutOfMemoryException(what, size, info[0], info[1], liveBytes);
      }
      CudaDevice.check(rc, "cuMemAlloc(" + size + " bytes for " + what + ")");
      b = new DeviceBuffer(p, p.address(), size);
    }
    live.put(b, Boolean.TRUE);
    liveBytes += size;
    peakBytes = Math.max(peakBytes, liveBytes);
    return b;
  }

  /** Returns a block to the pool; it may be handed out at once (see the class comment). */
  synchronized void release(DeviceBuffer b) {
    if (live.remove(b) == null) {
      return;
    }
    liveBytes -= b.bytes();
    idle.computeIfAbsent(b.bytes(), k -> new ArrayDeque<>()).push(b);
    idleBytes += b.bytes();
  }

  /** Gives the idle blocks back to the driver. */
  synchronized void trim() {
    device.synchronize();
    for (ArrayDeque<DeviceBuffer> q : idle.values()) {
      for (DeviceBuffer b : q) {
        cuMemFree(b.pointer());
      }
    }
    idle.clear();
    idleBytes = 0;
  }

  /** Bytes handed out and not released. */
  synchronized long liveBytes() {
    return liveBytes;
  }

  /** Bytes held idle for reuse. */
  synchronized long idleBytes() {
    return idleBytes;
  }

  /** The most bytes handed out at once. */
  synchronized long peakBytes() {
    return peakBytes;
  }

  @Override
  public synchronized void close() {
    trim();
    for (DeviceBuffer b : live.keySet()) {
      cuMemFree(b.pointer());
    }
    live.clear();
    liveBytes = 0;
  }
}
