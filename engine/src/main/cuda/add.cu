// Residual add over a contiguous range: x += delta, four elements a thread where both are 16-byte aligned.
#include <stdint.h>

extern "C" __global__ void add_inplace(float* x, const float* delta, long long n) {
  long long first = blockIdx.x * (long long)blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long quads = ((uintptr_t)x % 16 == 0 && (uintptr_t)delta % 16 == 0) ? n / 4 : 0;
  for (long long i = first; i < quads; i += stride) {
    float4 a = reinterpret_cast<float4*>(x)[i];
    float4 d = reinterpret_cast<const float4*>(delta)[i];
    reinterpret_cast<float4*>(x)[i] = make_float4(a.x + d.x, a.y + d.y, a.z + d.z, a.w + d.w);
  }
  for (long long i = 4 * quads + first; i < n; i += stride) x[i] += delta[i];
}
