// Copies a small array from pinned host memory (mapped into the device's address space) into device
// memory as a kernel does: a decode step uploads a plan between two of its kernels, and there a copy on
// the copy engine held the GPU for ~12 us (its round trip; H100), a kernel reading a few kilobytes over
// the bus for a few. Both ends are 16-byte aligned (Staging aligns its rings to 256 bytes).
#include "common.cuh"

extern "C" __global__ void upload_ints(int* __restrict__ dst, const int* __restrict__ src, int n) {
  const int stride = gridDim.x * blockDim.x, first = blockIdx.x * blockDim.x + threadIdx.x, quads = n / 4;
  for (int i = first; i < quads; i += stride) reinterpret_cast<int4*>(dst)[i] = reinterpret_cast<const int4*>(src)[i];
  for (int i = 4 * quads + first; i < n; i += stride) dst[i] = src[i];
}
