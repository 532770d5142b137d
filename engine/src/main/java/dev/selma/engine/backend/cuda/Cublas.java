package dev.selma.engine.backend.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * cuBLAS through the JDK's FFM: JCuda's cuBLAS binding needs {@code libcublas.so.12} and fails on
 * CUDA 13 systems, while the C ABI of the few functions used here is the same in 12 and 13. One
 * handle, bound to the backend's stream, runs every GEMM with fp32 accumulation
 * ({@code CUBLAS_COMPUTE_32F}: no TF32, so the fp32 mode is exact to fp32 rounding).
 */
final class Cublas implements AutoCloseable {
  static final int CUDA_R_32F = 0, CUDA_R_16BF = 14;
  private static final int OP_N = 0, OP_T = 1, COMPUTE_32F = 68, GEMM_DEFAULT = -1;

  private final Arena arena = Arena.ofShared();
  private final MethodHandle destroy, gemmEx, statusName;
  private final MemorySegment handle, one, zero;
  private final String library;

  Cublas(CudaDevice.Stream stream) {
    SymbolLookup lib = null;
    String found = null;
    for (String name : new String[] {"libcublas.so.13", "libcublas.so.12"}) {
      try {
        lib = SymbolLookup.libraryLookup(name, Arena.global());
        found = name;
        break;
      } catch (IllegalArgumentException e) {
        // try the next major version
      }
    }
    if (lib == null) {
      throw new CudaException("cuBLAS not found (libcublas.so.13 or libcublas.so.12); is the CUDA toolkit's lib64 "
          + "on LD_LIBRARY_PATH?");
    }
    library = found;
    Linker linker = Linker.nativeLinker();
    MethodHandle create = linker.downcallHandle(lib.findOrThrow("cublasCreate_v2"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
    MethodHandle setStream = linker.downcallHandle(lib.findOrThrow("cublasSetStream_v2"),
        FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    destroy = linker.downcallHandle(lib.findOrThrow("cublasDestroy_v2"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
    statusName = linker.downcallHandle(lib.findOrThrow("cublasGetStatusName"), FunctionDescriptor.of(ADDRESS, JAVA_INT));
    gemmEx = linker.downcallHandle(lib.findOrThrow("cublasGemmEx"), FunctionDescriptor.of(JAVA_INT,
        ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, // handle, transa, transb, m, n, k
        ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, // alpha, A, Atype, lda
        ADDRESS, JAVA_INT, JAVA_INT, // B, Btype, ldb
        ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, // beta, C, Ctype, ldc
        JAVA_INT, JAVA_INT)); // computeType, algo
    one = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f);
    zero = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 0f);
    try {
      MemorySegment h = arena.allocate(ADDRESS);
      check((int) create.invokeExact(h), "cublasCreate");
      handle = h.get(ADDRESS, 0);
      check((int) setStream.invokeExact(handle, MemorySegment.ofAddress(stream.handle())), "cublasSetStream");
    } catch (CudaException e) {
      throw e;
    } catch (Throwable t) {
      throw new CudaException("calling cuBLAS: " + t, t);
    }
  }

  String library() {
    return library;
  }

  /**
   * {@code out[t] = W · x[t]} for row-major {@code x [tokens, k]}, {@code W [n, k]}, {@code out
   * [tokens, n]}, summed in fp32. Column-major cuBLAS sees the transposes, so this is {@code outᵀ = Wᵀᵀ ·
   * xᵀ}: W transposed, x not. With {@code accumulate} the product is added to what out holds (beta = 1).
   *
   * @param type CUDA_R_32F or CUDA_R_16BF, the element type of both W and x
   * @param outType CUDA_R_32F, or CUDA_R_16BF for a bf16 product that only another GEMM reads
   */
  void linear(long out, long x, long w, int tokens, int n, int k, int type, int outType, boolean accumulate) {
    // A local, not a conditional in the call: invokeExact would see the conditional's type as Object.
    MemorySegment beta = accumulate ? one : zero;
    try {
      check((int) gemmEx.invokeExact(handle, OP_T, OP_N, n, tokens, k, one, MemorySegment.ofAddress(w), type, k,
          MemorySegment.ofAddress(x), type, k, beta, MemorySegment.ofAddress(out), outType, n, COMPUTE_32F,
          GEMM_DEFAULT), "cublasGemmEx(" + tokens + "x" + k + " by " + n + "x" + k + ")");
    } catch (CudaException e) {
      throw e;
    } catch (Throwable t) {
      throw new CudaException("calling cuBLAS: " + t, t);
    }
  }

  private void check(int status, String what) throws Throwable {
    if (status != 0) {
      MemorySegment name = (MemorySegment) statusName.invokeExact(status);
      throw new CudaException(what + " failed: " + name.reinterpret(Long.MAX_VALUE).getString(0) + " (" + status + ")");
    }
  }

  @Override
  public void close() {
    try {
      int status = (int) destroy.invokeExact(handle);
      if (status != 0) {
        throw new CudaException("cublasDestroy failed with status " + status);
      }
    } catch (CudaException e) {
      throw e;
    } catch (Throwable t) {
      throw new CudaException("calling cuBLAS: " + t, t);
    } finally {
      arena.close();
    }
  }
}
