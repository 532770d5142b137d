package dev.selma.engine.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemFreeHost;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jcuda.Pointer;

/**
 * Moves data between the host and the device through pinned host memory (pageable copies run at a
 * tenth of the speed and are not asynchronous).
 *
 * <p>Two rings: a pinned host ring that every upload passes through, and a device ring for small
 * per-call arrays (token ids, attention plans) that kernels read. The device ring is reused from its
 * start after a stream synchronisation; the pinned ring once the copies that read a range are done
 * (events), so that nothing queued can still be reading what is overwritten.
 */
final class Staging implements AutoCloseable {
  private static final int ALIGN = 256;
  /**
   * Threads that copy an upload into the pinned ring: one core copies from the page cache at ~9 GB/s,
   * a fraction of what the copy engine takes from pinned memory. Eight loaded a 16 GB file at 21-22 GB/s on
   * the H100 machine, four at 17-19, twelve at 21-23 (docs/benchmarks.md); {@code -Dselma.cuda.copyThreads=N}
   * overrides the default.
   */
  private static final int COPY_THREADS = Math.max(1, Integer.getInteger("selma.cuda.copyThreads",
      Math.min(8, Runtime.getRuntime().availableProcessors())));
  /** Pieces smaller than this are copied by the calling thread alone. */
  private static final long PARALLEL_BYTES = 8L << 20;
  /** Copies from the pinned ring below this size share one entry of {@link #queued} with their neighbours. */
  private static final long SMALL_COPY = 1L << 20;
  /** {@link #ints} up to this size are copied by upload.cu's kernel, larger ones by the copy engine. */
  private static final long KERNEL_UPLOAD_BYTES = 64 << 10;
  private static final int UPLOAD_THREADS = 256, UPLOAD_MAX_BLOCKS = 16;

  private final CudaDevice device;
  private final DeviceMemory memory;
  private Pointer host;
  /** The pinned ring's address on the device (it is mapped), which upload.cu's kernel reads. */
  private long hostOnDevice;
  private MemorySegment hostSegment;
  private long hostCursor;
  /** How many times the pinned ring has wrapped: the lap that {@link #hostCursor} is in. */
  private long lap;
  /**
   * Copies queued from the pinned ring, oldest first: the range each reads, its lap, and an event the
   * stream passes after it (null for a copy inside a recorded step, which its graph's replay makes).
   * A range of the ring is written again once the copies of earlier laps that read it are done, not
   * when the whole stream is: a weight upload copies its next piece into the ring while the last one
   * crosses the bus.
   */
  private final java.util.ArrayDeque<RingCopy> queued = new java.util.ArrayDeque<>();
  private final java.util.ArrayDeque<jcuda.driver.CUevent> spareEvents = new java.util.ArrayDeque<>();

  private record RingCopy(long start, long end, long lap, jcuda.driver.CUevent done) {}
  private DeviceBuffer ring;
  private long ringCursor;
  /**
   * The last {@link #readOnlyInts} upload and its device address; null once the device ring is reused
   * from its start or a recorded step that may have queued it is dropped.
   */
  private int[] lastReadOnly;
  private long lastReadOnlyAt;
  private final java.util.concurrent.ExecutorService copiers = COPY_THREADS < 2 ? null
      : java.util.concurrent.Executors.newFixedThreadPool(COPY_THREADS - 1, r -> {
        Thread t = new Thread(r, "selma-upload-copy");
        t.setDaemon(true);
        return t;
      });

  Staging(CudaDevice device, DeviceMemory memory, long hostBytes, long ringBytes) {
    this.device = device;
    this.memory = memory;
    allocateHost(hostBytes);
    ring = memory.allocate(ringBytes, "the upload ring");
  }

  private void allocateHost(long bytes) {
    CudaDevice.Mapped mapped = device.allocateMapped(bytes);
    host = mapped.host();
    hostOnDevice = mapped.deviceAddress();
    hostSegment = MemorySegment.ofBuffer(host.getByteBuffer(0, bytes).order(ByteOrder.LITTLE_ENDIAN));
    hostCursor = 0;
  }

  /** The most a recorded step may upload: the smaller ring (a step must fit without wrapping). */
  long roomForAStep() {
    return Math.min(hostSegment.byteSize(), ring.bytes());
  }

  /**
   * Makes room for {@code bytes} of uploads in both rings now, so that uploads of up to that many bytes
   * from here on do not wait (a recorded decode step may not): waits for the stream if a ring must wrap,
   * else for the copies of an earlier lap that read the pinned ring ahead of its cursor. Work queued
   * before (the step before, still running) may go on: the step's uploads go past it in both rings.
   */
  void reserve(long bytes) {
    if (hostCursor + bytes > hostSegment.byteSize() || ringCursor + bytes > ring.bytes()) {
      device.synchronize();
      forgetQueued();
      hostCursor = 0;
      ringCursor = 0;
      lap++;
      lastReadOnly = null;
    } else {
      awaitCopiesReading(hostCursor + bytes);
    }
  }

  /** Space for {@code bytes} in the pinned ring: its offset. */
  private long reserveHost(long bytes) {
    if (bytes > hostSegment.byteSize()) {
      throw new IllegalArgumentException(bytes + " bytes exceed the " + hostSegment.byteSize() + "-byte staging ring");
    }
    if (hostCursor + bytes > hostSegment.byteSize()) {
      hostCursor = 0;
      lap++;
    }
    long at = hostCursor;
    awaitCopiesReading(at + bytes);
    hostCursor = (hostCursor + bytes + ALIGN - 1) & -ALIGN;
    return at;
  }

  /**
   * Waits until the copies of earlier laps that read the ring below {@code end} are done: for the newest
   * such copy's event (the stream runs in order), or for the stream when a recorded step's copy is
   * among them. Copies of this lap lie below the cursor, so nothing here waits inside a recorded step,
   * for which {@link #reserve} drained the stream.
   */
  private void awaitCopiesReading(long end) {
    int newest = -1, i = 0;
    boolean recorded = false;
    for (RingCopy c : queued) {
      if (c.lap() == lap) {
        break;
      }
      if (c.start() < end) {
        newest = i;
      }
      i++;
    }
    if (newest < 0) {
      return;
    }
    java.util.Iterator<RingCopy> it = queued.iterator();
    for (int j = 0; j < newest; j++) {
      recorded |= it.next().done() == null;
    }
    RingCopy last = it.next();
    if (recorded || last.done() == null) {
      device.synchronize();
      forgetQueued();
      return;
    }
    device.await(last.done());
    for (int j = 0; j <= newest; j++) {
      RingCopy c = queued.pollFirst();
      if (c.done() != null) {
        spareEvents.push(c.done());
      }
    }
  }

  /** Forgets the queued copies, which are done (the stream was drained). */
  private void forgetQueued() {
    for (RingCopy c : queued) {
      if (c.done() != null) {
        spareEvents.push(c.done());
      }
    }
    queued.clear();
  }

  /**
   * Notes a copy just queued from the ring's {@code [at, at + bytes)}, with an event unless in a recorded
   * step. Small copies after a small one share its entry, its event recorded again after them, and
   * recorded copies after a recorded one share its entry, so that a lap holds a bounded number of entries
   * however many plans a prefill or a run of decode steps uploads.
   */
  private void queuedCopy(long at, long bytes) {
    if (device.recording()) {
      // Recorded copies of a lap are one entry: a decode step no longer drains the stream, so a lap may
      // hold thousands of steps' plans, and a recorded range only ever means "wait for the stream".
      RingCopy last = queued.peekLast();
      long start = at;
      if (last != null && last.lap() == lap && last.done() == null) {
        queued.pollLast();
        start = last.start();
      }
      queued.addLast(new RingCopy(start, at + bytes, lap, null));
      return;
    }
    try {
      RingCopy last = queued.peekLast();
      if (bytes < SMALL_COPY && last != null && last.lap() == lap && last.done() != null
          && last.end() - last.start() < SMALL_COPY) {
        device.record(last.done());
        queued.pollLast();
        queued.addLast(new RingCopy(last.start(), at + bytes, lap, last.done()));
        return;
      }
      jcuda.driver.CUevent done = spareEvents.isEmpty() ? device.newEvent() : spareEvents.pop();
      device.record(done);
      queued.addLast(new RingCopy(at, at + bytes, lap, done));
    } catch (RuntimeException e) { // the copy is queued all the same: its range waits for the stream
      queued.addLast(new RingCopy(at, at + bytes, lap, null));
      throw e;
    }
  }

  /** Queues a copy of {@code src} to {@code dst + offset}, in pieces of half the ring when larger. */
  void upload(MemorySegment src, DeviceBuffer dst, long offset) {
    long step = hostSegment.byteSize() / 2;
    for (long done = 0; done < src.byteSize(); done += step) {
      long bytes = Math.min(step, src.byteSize() - done);
      long at = reserveHost(bytes);
      copyIn(src, done, at, bytes);
      device.copyToDevice(dst, offset + done, host.withByteOffset(at), bytes);
      queuedCopy(at, bytes);
    }
  }

  /**
   * Copies {@code bytes} of {@code src} from {@code from} into the pinned ring at {@code at}, a large
   * piece in slices on the copy threads and the calling one.
   */
  private void copyIn(MemorySegment src, long from, long at, long bytes) {
    if (copiers == null || bytes < PARALLEL_BYTES) {
      MemorySegment.copy(src, from, hostSegment, at, bytes);
      return;
    }
    long slice = ((bytes + COPY_THREADS - 1) / COPY_THREADS + 4095) & -4096L;
    java.util.List<java.util.concurrent.Future<?>> others = new java.util.ArrayList<>();
    for (long o = slice; o < bytes; o += slice) {
      long start = o, n = Math.min(slice, bytes - o);
      others.add(copiers.submit(() -> MemorySegment.copy(src, from + start, hostSegment, at + start, n)));
    }
    Throwable failure = null;
    try {
      MemorySegment.copy(src, from, hostSegment, at, Math.min(slice, bytes));
    } catch (Throwable e) { // an Error too (a mapped file truncated under us): the slices must finish first
      failure = e;
    }
    // Every slice finishes before the ring may be reused, even when one failed or the thread is interrupted.
    boolean interrupted = false;
    for (java.util.concurrent.Future<?> f : others) {
      while (true) {
        try {
          f.get();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        } catch (java.util.concurrent.ExecutionException e) {
          if (failure == null) {
            failure = e.getCause();
          }
          break;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    if (failure instanceof RuntimeException r) {
      throw r;
    }
    if (failure instanceof Error e) {
      throw e;
    }
    if (failure != null) {
      throw new IllegalStateException("copying an upload failed", failure);
    }
  }

  /** Copies {@code dst.byteSize()} bytes from {@code src + offset} into {@code dst}, waiting for them. */
  void download(DeviceBuffer src, long offset, MemorySegment dst) {
    long step = hostSegment.byteSize() / 2;
    for (long done = 0; done < dst.byteSize(); done += step) {
      long bytes = Math.min(step, dst.byteSize() - done);
      long at = reserveHost(bytes);
      device.copyToHost(host.withByteOffset(at), src, offset + done, bytes);
      device.synchronize();
      MemorySegment.copy(hostSegment, at, dst, done, bytes);
    }
  }

  /**
   * Copies {@code ints} into the device ring, a small array by upload.cu's kernel (a copy engine's copy
   * between two kernels holds the GPU longer); returns their device address, valid until the ring wraps.
   */
  long ints(int[] ints) {
    long bytes = 4L * ints.length;
    if (bytes > ring.bytes()) {
      device.synchronize();
      memory.release(ring);
      ring = memory.allocate(Math.max(bytes, 2 * ring.bytes()), "the upload ring");
      ringCursor = 0;
      lastReadOnly = null;
    } else if (ringCursor + bytes > ring.bytes()) {
      device.synchronize();
      ringCursor = 0;
      lastReadOnly = null;
    }
    long at = ringCursor;
    ringCursor = (ringCursor + bytes + ALIGN - 1) & -ALIGN;
    if (bytes > KERNEL_UPLOAD_BYTES) {
      upload(MemorySegment.ofArray(ints), ring, at);
      return ring.address() + at;
    }
    long from = reserveHost(bytes);
    MemorySegment.copy(MemorySegment.ofArray(ints), 0, hostSegment, from, bytes);
    int blocks = (int) Math.min(UPLOAD_MAX_BLOCKS, (ints.length / 4 + UPLOAD_THREADS - 1) / UPLOAD_THREADS + 1);
    device.launch("upload_ints", blocks, 1, UPLOAD_THREADS, 0, ring.address() + at, hostOnDevice + from, ints.length);
    queuedCopy(from, bytes);
    return ring.address() + at;
  }

  /**
   * {@link #ints} for arrays that no kernel writes: the last such upload's address when it had the
   * same contents and still holds. A decode step's layers share one dense plan, and each upload between
   * two kernels holds the GPU (a copy on the copy engine ~12 µs, H100: a CUPTI trace of a Llama-3-8B step
   * at 4K found 0.38 ms of its 6.7; upload.cu's kernel ~4-7 µs).
   */
  long readOnlyInts(int[] ints) {
    if (lastReadOnly != null && java.util.Arrays.equals(lastReadOnly, ints)) {
      return lastReadOnlyAt;
    }
    lastReadOnlyAt = ints(ints);
    lastReadOnly = ints.clone();
    return lastReadOnlyAt;
  }

  /** Forgets the last {@link #readOnlyInts} upload: a recorded step that may have queued it was dropped. */
  void forgetReadOnly() {
    lastReadOnly = null;
  }

  /**
   * Queues the copy of {@code bytes} at {@code address}, which {@link #ints} returned (a kernel may have
   * changed them since), into pinned {@code dst}: the copy is done when the stream passes it.
   */
  void copyBack(long address, jcuda.Pointer dst, long bytes) {
    device.copyToHost(dst, ring, address - ring.address(), bytes);
  }

  /** Copies {@code n} floats from {@code src + offset} into {@code dst[0, n)}, waiting for the copy. */
  void download(DeviceBuffer src, long offset, float[] dst, int n) {
    long bytes = 4L * n;
    long at = reserveHost(bytes);
    device.copyToHost(host.withByteOffset(at), src, offset, bytes);
    device.synchronize();
    MemorySegment.copy(hostSegment, ValueLayout.JAVA_FLOAT_UNALIGNED, at, dst, 0, n);
  }

  /** Copies {@code n} ints from {@code src + offset} into {@code dst[0, n)}, waiting for the copy. */
  void downloadInts(DeviceBuffer src, long offset, int[] dst, int n) {
    long bytes = 4L * n;
    long at = reserveHost(bytes);
    device.copyToHost(host.withByteOffset(at), src, offset, bytes);
    device.synchronize();
    MemorySegment.copy(hostSegment, ValueLayout.JAVA_INT_UNALIGNED, at, dst, 0, n);
  }

  @Override
  public void close() {
    if (copiers != null) {
      copiers.shutdown();
    }
    device.synchronize();
    forgetQueued();
    for (jcuda.driver.CUevent e : spareEvents) {
      device.destroy(e);
    }
    cuMemFreeHost(host);
  }
}
