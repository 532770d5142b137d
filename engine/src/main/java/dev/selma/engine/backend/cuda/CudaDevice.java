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
  /** CUDA graphs, through the FFM as launches are (JCuda 12.6 binds cuGraphExecUpdate's CUDA 11 form). */
  private final MethodHandle beginCapture, endCapture, graphInstantiate, graphExecUpdate, graphLaunch, graphDestroy,
      graphExecDestroy;
  /** Out-parameters of the graph calls: a CUgraph, a CUgraphExec, a CUgraphExecUpdateResultInfo. */
  private final MemorySegment graphOut, execOut, updateInfo;
  /**
   * Launches in a step's first recorded segment, and the most in a later one: each segment doubles the
   * last. The GPU runs each segment while the host records the next, and waits for the first, so that
   * one is short. One graph for the whole step left the GPU idle while it was recorded (Llama-3-8B at 4K
   * on an H100: 9.1 ms a step against 8.0 launched kernel by kernel); segments of 10, 20, 40 and 80
   * launches took 7.8-7.9, 7.9, 8.0-8.1 and 8.1-8.2 ms. Later (docs/benchmarks.md, session 11), at 4K
   * every mix of 1-10 first and 10-64 most took 6.2-6.5 ms, but at 128K with select-and-merge, whose
   * host plans more per layer, 32 most took 7.13-7.16 ms against 6.97-7.00 for 10.
   */
  static final int FIRST_SEGMENT_LAUNCHES = 2, MAX_SEGMENT_LAUNCHES = 10;
  /** While a step is recorded: launches in the current segment, its index, and each segment's exec. */
  private boolean recording;
  private int segmentLaunches, segmentLimit, segment;
  private long[] segmentExecs = new long[16];
  /** Segments replayed through an updated exec, through a new one, and the last failed update's result. */
  private long updated, instantiated;
  private int lastUpdateResult;
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

  /**
   * A device pointer that cuMemAlloc (or cuMemHostGetDevicePointer) fills in, whose address the backend
   * passes to kernels and cuBLAS.
   */
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
      Linker linker = Linker.nativeLinker();
      launchKernel = linker.downcallHandle(cuda.findOrThrow("cuLaunchKernel"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
              JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
      beginCapture = linker.downcallHandle(cuda.findOrThrow("cuStreamBeginCapture_v2"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
      endCapture = linker.downcallHandle(cuda.findOrThrow("cuStreamEndCapture"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
      graphInstantiate = linker.downcallHandle(cuda.findOrThrow("cuGraphInstantiateWithFlags"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
      graphExecUpdate = linker.downcallHandle(cuda.findOrThrow("cuGraphExecUpdate_v2"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
      graphLaunch = linker.downcallHandle(cuda.findOrThrow("cuGraphLaunch"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
      graphDestroy = linker.downcallHandle(cuda.findOrThrow("cuGraphDestroy"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
      graphExecDestroy = linker.downcallHandle(cuda.findOrThrow("cuGraphExecDestroy"),
          FunctionDescriptor.of(JAVA_INT, ADDRESS));
    } catch (RuntimeException e) {
      arena.close();
      cuDevicePrimaryCtxRelease(device);
      throw e;
    }
    graphOut = arena.allocate(ADDRESS);
    execOut = arena.allocate(ADDRESS);
    updateInfo = arena.allocate(32, 8);
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

  /** 10 × major + minor: 90 for an H100 or H200, the one target with sm_90a code (wgmma) in the fatbin. */
  int computeCapability() {
    return computeCapability;
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

  /**
   * Whether the loaded module has {@code kernel}: the sm_90a kernels exist only in the machine code the
   * driver loads for a compute capability 9.0 GPU, not in the PTX it compiles where it forces or needs PTX.
   */
  boolean has(String kernel) {
    if (functions.containsKey(kernel)) {
      return true;
    }
    Function f = new Function();
    int rc = cuModuleGetFunction(f, module, kernel);
    if (rc == CUresult.CUDA_ERROR_NOT_FOUND) {
      return false;
    }
    check(rc, "cuModuleGetFunction(" + kernel + ")");
    functions.put(kernel, f);
    return true;
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
    if (recording && ++segmentLaunches >= segmentLimit) {
      replaySegment();
      beginCapture();
    }
    if (CHECK_LAUNCHES || PROFILE) {
      check(cuStreamSynchronize(stream), "kernel " + kernel);
    }
    if (PROFILE) {
      record(kernel, t0);
    }
  }

  /** Whether every launch waits for its kernel (checked launches, the profile): nothing can be recorded then. */
  static boolean synchronous() {
    return CHECK_LAUNCHES || PROFILE;
  }

  /** Whether a step is being recorded: nothing may wait for the stream. */
  boolean recording() {
    return recording;
  }

  /**
   * Records the stream's work from here on, in segments of {@link #FIRST_SEGMENT_LAUNCHES} launches and
   * more, each replayed (through its own exec, updated in place while steps keep their shape) as soon as
   * it is complete, until {@link #endStep}. Nothing may wait for the stream meanwhile.
   */
  void beginStep() {
    recording = true;
    segment = 0;
    segmentLaunches = 0;
    segmentLimit = FIRST_SEGMENT_LAUNCHES;
    beginCapture();
  }

  /**
   * Records the rest of the step as one segment. For a step recorded while the GPU still runs the one
   * before: replaying its first launches early gains nothing then, and each segment's start costs the GPU a
   * few µs (a 4K Llama-3-8B step: 31 µs of gaps between its 293 kernels as one segment, 120-150 in ~30).
   */
  void recordRestAsOneSegment() {
    segmentLimit = Integer.MAX_VALUE;
  }

  /** Replays the step's last segment and stops recording. */
  void endStep() {
    recording = false;
    replaySegment();
  }

  /** Stops recording after a failure; the current segment's work is dropped. */
  void abandonStep() {
    recording = false;
    destroyGraph(endCapture());
  }

  private void replaySegment() {
    long graph = endCapture();
    if (segment == segmentExecs.length) {
      segmentExecs = java.util.Arrays.copyOf(segmentExecs, 2 * segment);
    }
    long exec = segmentExecs[segment];
    segmentExecs[segment] = 0; // replay destroys it when it cannot be updated
    segmentExecs[segment] = replay(exec, graph);
    segment++;
    segmentLaunches = 0;
    segmentLimit = (int) Math.min(2L * segmentLimit, MAX_SEGMENT_LAUNCHES);
  }

  /** How recorded segments were replayed, for benchmarks. */
  String graphCounts() {
    return "graph segments: " + updated + " updated, " + instantiated + " made anew (last failed update: result "
        + lastUpdateResult + ")";
  }

  /** Frees the execs of recorded steps. */
  void destroyExecs() {
    for (int i = 0; i < segmentExecs.length; i++) {
      if (segmentExecs[i] != 0) {
        destroyExec(segmentExecs[i]);
        segmentExecs[i] = 0;
      }
    }
  }

  /**
   * Records the stream's work from here on instead of running it, until {@link #endCapture}. Relaxed mode:
   * the host may allocate device memory meanwhile; nothing may wait for the stream.
   */
  private void beginCapture() {
    // CU_STREAM_CAPTURE_MODE_RELAXED
    check(call(beginCapture, streamHandle, 2), "cuStreamBeginCapture");
  }

  /** Stops recording: the graph of the recorded work, which the caller replays or destroys. */
  private long endCapture() {
    check(call(endCapture, streamHandle, graphOut), "cuStreamEndCapture (the step waited for the GPU while recorded)");
    return graphOut.get(ADDRESS, 0).address();
  }

  /**
   * Runs {@code graph} on the stream through {@code exec}, updated in place when the graph has the same
   * shape as the one it was made from, else made anew; destroys {@code graph}. Returns the exec to keep
   * for the next graph (0 for none).
   */
  private long replay(long exec, long graph) {
    MemorySegment g = MemorySegment.ofAddress(graph);
    try {
      if (exec != 0 && call(graphExecUpdate, MemorySegment.ofAddress(exec), g, updateInfo) != CUresult.CUDA_SUCCESS) {
        lastUpdateResult = updateInfo.get(JAVA_INT, 0);
        destroyExec(exec);
        exec = 0;
      }
      if (exec == 0) {
        check(call(graphInstantiate, execOut, g, 0L), "cuGraphInstantiateWithFlags");
        exec = execOut.get(ADDRESS, 0).address();
        instantiated++;
      } else {
        updated++;
      }
      int rc = call(graphLaunch, MemorySegment.ofAddress(exec), streamHandle);
      if (rc != CUresult.CUDA_SUCCESS) {
        destroyExec(exec);
        check(rc, "cuGraphLaunch");
      }
      return exec;
    } finally {
      destroyGraph(graph);
    }
  }

  private void destroyGraph(long graph) {
    call(graphDestroy, MemorySegment.ofAddress(graph));
  }

  private void destroyExec(long exec) {
    call(graphExecDestroy, MemorySegment.ofAddress(exec));
  }

  // The graph calls, one overload a signature: invokeExact, as the launch's, costs the host a fraction
  // of invokeWithArguments, and a step makes about 150 of them, the first few while the GPU waits.
  private static int call(MethodHandle h, MemorySegment a) {
    try {
      return (int) h.invokeExact(a);
    } catch (Throwable t) {
      throw driverCallFailed(t);
    }
  }

  private static int call(MethodHandle h, MemorySegment a, int b) {
    try {
      return (int) h.invokeExact(a, b);
    } catch (Throwable t) {
      throw driverCallFailed(t);
    }
  }

  private static int call(MethodHandle h, MemorySegment a, MemorySegment b) {
    try {
      return (int) h.invokeExact(a, b);
    } catch (Throwable t) {
      throw driverCallFailed(t);
    }
  }

  private static int call(MethodHandle h, MemorySegment a, MemorySegment b, long c) {
    try {
      return (int) h.invokeExact(a, b, c);
    } catch (Throwable t) {
      throw driverCallFailed(t);
    }
  }

  private static int call(MethodHandle h, MemorySegment a, MemorySegment b, MemorySegment c) {
    try {
      return (int) h.invokeExact(a, b, c);
    } catch (Throwable t) {
      throw driverCallFailed(t);
    }
  }

  private static CudaException driverCallFailed(Throwable t) {
    return new CudaException("calling the driver: " + t, t);
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

  /** {@code bytes} of page-locked host memory, which the device copies to and from at full speed. */
  Pointer allocatePinned(long bytes) {
    Pointer p = new Pointer();
    check(cuMemHostAlloc(p, bytes, 0), "cuMemHostAlloc(" + bytes + " bytes of pinned memory)");
    return p;
  }

  /** Page-locked host memory that kernels read and write in place, over the bus: its host and device addresses. */
  record Mapped(Pointer host, long deviceAddress) {}

  /** {@code bytes} of pinned host memory mapped into the device's address space (free with {@link #freePinned}). */
  Mapped allocateMapped(long bytes) {
    Pointer p = new Pointer();
    check(cuMemHostAlloc(p, bytes, CU_MEMHOSTALLOC_DEVICEMAP), "cuMemHostAlloc(" + bytes + " bytes of mapped memory)");
    Allocation mapped = new Allocation();
    int rc = cuMemHostGetDevicePointer(mapped, p, 0);
    if (rc != CUresult.CUDA_SUCCESS) {
      cuMemFreeHost(p);
      check(rc, "cuMemHostGetDevicePointer");
    }
    return new Mapped(p, mapped.address());
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

  /** Queues a copy of {@code bytes} from pinned host memory to {@code dst + offset}. */
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

  /** Whether the stream has passed {@code e}'s mark (a kernel failure before it is thrown here). */
  boolean done(CUevent e) {
    int rc = cuEventQuery(e);
    if (rc == CUresult.CUDA_ERROR_NOT_READY) {
      return false;
    }
    check(rc, "querying an event (a kernel launched before it failed)");
    return true;
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
