package dev.selma.engine.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Whether this machine can run the CUDA backend: a CUDA driver library, a device, and a driver new
 * enough for the kernels' PTX (nvcc 13 emits PTX ISA 9.0, which needs CUDA 13, i.e. driver ≥ 580).
 * The probe calls the driver through the JDK's FFM, so it costs no native-library extraction and
 * works, answering "no", on machines without CUDA.
 *
 * @param usable whether the CUDA backend can start
 * @param reason why not, or what was found
 * @param driverVersion the driver's CUDA version as CUDA encodes it (13000 = 13.0), 0 if unknown
 * @param devices CUDA devices found
 */
public record CudaAvailability(boolean usable, String reason, int driverVersion, int devices) {
  /** The lowest driver API version the kernels load on. */
  public static final int MIN_DRIVER_VERSION = 13000;

  private static volatile CudaAvailability probed;

  /** Probes once per JVM; later calls return the first answer. */
  public static CudaAvailability probe() {
    CudaAvailability a = probed;
    if (a == null) {
      probed = a = probeNow();
    }
    return a;
  }

  private static CudaAvailability probeNow() {
    SymbolLookup cuda;
    try {
      // The global arena keeps the driver loaded: JCuda's binding uses the same library next.
      cuda = SymbolLookup.libraryLookup(System.mapLibraryName("cuda") + ".1", Arena.global());
    } catch (IllegalArgumentException | IllegalCallerException e) {
      return new CudaAvailability(false, "no CUDA driver (" + System.mapLibraryName("cuda") + ".1 not found)", 0, 0);
    }
    try (Arena arena = Arena.ofConfined()) {
      Linker linker = Linker.nativeLinker();
      FunctionDescriptor intOfInt = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT);
      FunctionDescriptor intOfPtr = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS);
      MethodHandle init = linker.downcallHandle(cuda.findOrThrow("cuInit"), intOfInt);
      MethodHandle version = linker.downcallHandle(cuda.findOrThrow("cuDriverGetVersion"), intOfPtr);
      MethodHandle count = linker.downcallHandle(cuda.findOrThrow("cuDeviceGetCount"), intOfPtr);
      int rc = (int) init.invokeExact(0);
      if (rc != 0) {
        return new CudaAvailability(false, "the CUDA driver did not initialise (cuInit returned " + rc
            + (rc == 100 ? ", no CUDA device" : "") + ")", 0, 0);
      }
      MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
      rc = (int) version.invokeExact(out);
      int v = rc == 0 ? out.get(ValueLayout.JAVA_INT, 0) : 0;
      rc = (int) count.invokeExact(out);
      int n = rc == 0 ? out.get(ValueLayout.JAVA_INT, 0) : 0;
      String driver = "CUDA " + v / 1000 + "." + v % 1000 / 10;
      if (n == 0) {
        return new CudaAvailability(false, "the CUDA driver (" + driver + ") sees no device", v, 0);
      }
      if (v < MIN_DRIVER_VERSION) {
        return new CudaAvailability(false, "the driver supports " + driver
            + " but Selma's kernels need CUDA 13 (driver 580 or newer)", v, n);
      }
      return new CudaAvailability(true, n + " CUDA device" + (n == 1 ? "" : "s") + ", driver " + driver, v, n);
    } catch (Throwable t) {
      return new CudaAvailability(false, "probing the CUDA driver failed: " + t, 0, 0);
    }
  }
}
