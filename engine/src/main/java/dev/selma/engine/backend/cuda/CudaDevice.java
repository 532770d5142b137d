package dev.selma.engine.backend.cuda;

import static jcuda.driver.JCudaDriver.*;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;

/**
 * One GPU through JCuda's driver API: its primary context, one stream that every operation of the
 * backend is ordered on, the kernel module loaded from the committed fatbin, launches and copies.
 * Every driver call is checked; a failure becomes a {@link CudaException} naming the call and the
 * CUDA error. Kernel faults surface at the next synchronisation (or at once with {@code
 * -Dselma.cuda.checkLaunches=true}, which synchronises after every launch to name the kernel).
 *
 * <p>Kernels are launched through the FFM ({@code cuLaunchKernel} of the same libcuda that JCuda uses, in
 * the same context): JCuda marshals each argument of a launch as a Java array through JNI, and a
 * sampling profile of decode (Llama-3.2-1B shapes) found the host thread inside JCuda's launch 79 % of
 * the time, 17 µs a launch; through the FFM that decode went from 4.3-4.8 to 3.3 ms a token. The
 * arguments go into fixed 8-byte slots that the driver copies at the call.
 *
 * <p>With {@code -Dselma.cuda.profile=true} every launch and every {@link #timed} section runs alone
 * (the stream is drained before and after it) and its wall time is added up by name: slow, but it
 * says where a run's time goes without a profiler on the machine. {@link #profile()} reports it.
 */
final class CudaDevice implements AutoCloseable {
  static final String FATBIN = "kernels.fatbin";
  private static final boolean CHECK_LAUNCHES = Boolean.getBoolean("selma.cuda.checkLaunches");
  private static final boolean PROFILE = Boolean.getBoolean("selma.cuda.profile");
  private static final int MAX_ARGS = 48;

  private final CUdevice device = new CUdevice();
  private final CUcontext context = new CUcontext();
  private final Stream stream = new Stream();
  private final CUmodule module = new CUmodule();
  private final Map<String, Function> functions = new HashMap<>();
  private final Arena arena = Arena.ofShared();
  private final MethodHandle launchKernel;
  /** Kernel arguments: 8-byte slots, and the array of pointers to them that cuLaunchKernel reads. */
  private final MemorySegment argSlots, argPointers, streamHandle;
  /** Profile: name to {calls, nanoseconds}. */
  private final Map<String, long[]> profile = new HashMap<>();
  private final String name;
  private final int multiprocessors, sharedMemoryOptIn, computeCapability;

  /** A stream whose native handle cuBLAS can be given. */
  static final class Stream extends CUstream {
    long handle() {
      return getNativePointer();
    }
  }

  /** A kernel, whose native handle the FFM launch takes. */
  static final class Function extends CUfunction {
    long handle() {
      return getNativePointer();
    }
  }

  /** A pointer cuMemAlloc fills in, whose address the backend passes to kernels and cuBLAS. */
  static final class Allocation extends CUdeviceptr {
    long address() {
      return getNativePointer();
    }
  }

  CudaDevice(int ordinal) {
    setExceptionsEnabled(false);
    check(cuInit(0), "cuInit");
    check(cuDeviceGet(device, ordinal), "cuDeviceGet");
    byte[] nameBytes = new byte[256];
    check(cuDeviceGetName(nameBytes, nameBytes.length, device), "cuDeviceGetName");
    int len = 0;
    while (len < nameBytes.length && nameBytes[len] != 0) {
      len++;
    }
    name = new String(nameBytes, 0, len, StandardCharsets.UTF_8);
    multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    sharedMemoryOptIn = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
    computeCapability = 10 * attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
        + attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    check(cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
    try {
      makeCurrent();
      check(cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      byte[] fatbin = loadFatbin();
      check(cuModuleLoadData(module, fatbin), "cuModuleLoadData (" + FATBIN + " on compute capability "
          + computeCapability / 10 + "." + computeCapability % 10 + ")");
      SymbolLookup cuda = SymbolLookup.libraryLookup("libcuda.so.1", arena);
      launchKernel = Linker.nativeLinker().downcallHandle(cuda.findOrThrow("cuLaunchKernel"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
              JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    } catch (RuntimeException e) {
      arena.close();
      cuDevicePrimaryCtxRelease(device);
      throw e;
    }
    argSlots = arena.allocate(8L * MAX_ARGS, 8);
    argPointers = arena.allocate(ADDRESS, MAX_ARGS);
    for (int i = 0; i < MAX_ARGS; i++) {
      argPointers.setAtIndex(ADDRESS, i, argSlots.asSlice(8L * i));
    }
    streamHandle = MemorySegment.ofAddress(stream.handle());
  }

  private static byte[] loadFatbin() {
    try (InputStream in = CudaDevice.class.getResourceAsStream(FATBIN)) {
      if (in == null) {
        throw new CudaException("the kernel fatbin " + FATBIN + " is missing from the engine jar");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new CudaException("reading the kernel fatbin " + FATBIN + ": " + e.getMessage(), e);
    }
  }

  private int attribute(int attribute) {
    int[] v = new int[1];
    check(cuDeviceGetAttribute(v, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
    return v[0];
  }

  String name() {
    return name;
  }

  int multiprocessors() {
    return multiprocessors;
  }

  int sharedMemoryOptIn() {
    return sharedMemoryOptIn;
  }

  Stream stream() {
    return stream;
  }

  /** Binds the context to the calling thread; any thread may drive the backend. */
  void makeCurrent() {
    check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
  }

  /** Free and total device memory in bytes. */
  long[] memoryInfo() {
    long[] free = new long[1], total = new long[1];
    check(cuMemGetInfo(free, total), "cuMemGetInfo");
    return new long[] {free[0], total[0]};
  }

  Function function(String kernel) {
    return functions.computeIfAbsent(kernel, k -> {
      Function f = new Function();
      check(cuModuleGetFunction(f, module, k), "cuModuleGetFunction(" + k + ")");
      return f;
    });
  }

  /** Lets a kernel take up to {@code bytes} of dynamic shared memory (above the default 48 KiB). */
  void allowSharedMemory(String kernel, int bytes) {
    check(cuFuncSetAttribute(function(kernel), CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        bytes), "cuFuncSetAttribute(" + kernel + ")");
  }

  /**
   * Launches a kernel on the stream. Arguments map to C parameters by Java type: {@code long} to
   * pointers and {@code long long}, {@code int} to {@code int}, {@code float} to {@code float}.
   */
  void launch(String kernel, int gridX, int gridY, int blockX, int sharedBytes, Object... args) {
    if (args.length > MAX_ARGS) {
      throw new IllegalArgumentException(kernel + ": " + args.length + " arguments, at most " + MAX_ARGS);
    }
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case Long l -> argSlots.set(JAVA_LONG, 8L * i, l);
        case Integer n -> argSlots.set(JAVA_INT, 8L * i, n);
        case Float f -> argSlots.set(JAVA_FLOAT, 8L * i, f);
        default -> throw new IllegalArgumentException("kernel argument of type " + args[i].getClass());
      }
    }
    MemorySegment f = MemorySegment.ofAddress(function(kernel).handle());
    long t0 = PROFILE ? drained() : 0;
    int rc;
    try {
      rc = (int) launchKernel.invokeExact(f, gridX, gridY, 1, blockX, 1, 1, sharedBytes, streamHandle, argPointers,
          MemorySegment.NULL);
    } catch (Throwable t) {
      throw new CudaException("launching " + kernel + ": " + t, t);
    }
    check(rc, "launching " + kernel);
    if (CHECK_LAUNCHES || PROFILE) {
      check(cuStreamSynchronize(stream), "kernel " + kernel);
    }
    if (PROFILE) {
      record(kernel, t0);
    }
  }

  /** Runs {@code work}; under the profile, alone and timed as {@code what}. */
  void timed(String what, Runnable work) {
    if (!PROFILE) {
      work.run();
      return;
    }
    long t0 = drained();
    work.run();
    synchronize();
    record(what, t0);
  }

  private long drained() {
    synchronize();
    return System.nanoTime();
  }

  private void record(String what, long t0) {
    long[] entry = profile.computeIfAbsent(what, k -> new long[2]);
    entry[0]++;
    entry[1] += System.nanoTime() - t0;
  }

  /**
   * The profile so far, one line per name (calls, seconds, share), longest first, then cleared; empty
   * unless {@code -Dselma.cuda.profile=true}.
   */
  String profile() {
    double total = profile.values().stream().mapToLong(v -> v[1]).sum();
    StringBuilder b = new StringBuilder();
    profile.entrySet().stream().sorted((x, y) -> Long.compare(y.getValue()[1], x.getValue()[1])).forEach(en ->
        b.append(String.format(java.util.Locale.ROOT, "%-34s %9d calls %9.3f s %5.1f %%%n", en.getKey(),
            en.getValue()[0], en.getValue()[1] / 1e9, 100 * en.getValue()[1] / total)));
    profile.clear();
    return b.toString();
  }

  /** Queues a copy of {@code bytes} from pinned host memory to {@code dst + offset}. */
  /** {@code bytes} of page-locked host memory, which the device copies to and from at full speed. */
  Pointer allocatePinned(long bytes) {
    Pointer p = new Pointer();
    check(cuMemHostAlloc(p, bytes, 0), "cuMemHostAlloc(" + bytes + " bytes of pinned memory)");
    return p;
  }

  void freePinned(Pointer p) {
    check(cuMemFreeHost(p), "cuMemFreeHost");
  }

  void copyWithinDevice(DeviceBuffer dst, DeviceBuffer src, long bytes) {
    copyWithinDevice(dst, 0, src, 0, bytes);
  }

  void copyWithinDevice(DeviceBuffer dst, long dstOffset, DeviceBuffer src, long srcOffset, long bytes) {
    if (bytes > 0) {
      check(cuMemcpyDtoDAsync(dst.pointer().withByteOffset(dstOffset), src.pointer().withByteOffset(srcOffset), bytes,
          stream), "cuMemcpyDtoDAsync");
    }
  }

  void copyToDevice(DeviceBuffer dst, long offset, Pointer src, long bytes) {
    check(cuMemcpyHtoDAsync(dst.pointer().withByteOffset(offset), src, bytes, stream), "cuMemcpyHtoDAsync");
  }

  /** Queues a copy of {@code bytes} from {@code src + offset} to pinned host memory. */
  void copyToHost(Pointer dst, DeviceBuffer src, long offset, long bytes) {
    check(cuMemcpyDtoHAsync(dst, src.pointer().withByteOffset(offset), bytes, stream), "cuMemcpyDtoHAsync");
  }

  /** A marker for a point of the stream, so that one can wait for that point and not for the whole stream. */
  CUevent newEvent() {
    CUevent e = new CUevent();
    check(cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    return e;
  }

  /** Marks the stream's current end with {@code e}. */
  void record(CUevent e) {
    check(cuEventRecord(e, stream), "cuEventRecord");
  }

  /** Waits until the stream has passed {@code e}'s mark. */
  void await(CUevent e) {
    check(cuEventSynchronize(e), "waiting for an event (a kernel launched before it failed)");
  }

  void destroy(CUevent e) {
    cuEventDestroy(e);
  }

  /** Waits for everything queued; a kernel fault since the last wait is reported here. */
  void synchronize() {
    check(cuStreamSynchronize(stream), "synchronising the stream (a kernel launched since the last wait failed)");
  }

  /** Throws a {@link CudaException} naming the call and the CUDA error unless {@code rc} is success. */
  static void check(int rc, String what) {
    if (rc != CUresult.CUDA_SUCCESS) {
      throw new CudaException(what + " failed: " + errorName(rc));
    }
  }

  static String errorName(int rc) {
    String[] name = new String[1];
    return cuGetErrorName(rc, name) == CUresult.CUDA_SUCCESS && name[0] != null
        ? name[0] + " (" + rc + ")"
        : CUresult.stringFor(rc);
  }

  @Override
  public void close() {
    cuCtxSetCurrent(context);
    cuStreamSynchronize(stream);
    cuModuleUnload(module);
    cuStreamDestroy(stream);
    cuDevicePrimaryCtxRelease(device);
    arena.close();
  }
}
