// Dummy weights: uniform values in [center - radius, center + radius] from a counter-based hash
// (splitmix64 of seed and index), so any tensor is generated on the GPU in one pass, reproducibly; Q8_0
// ones (q8_0.cu's layout) as uniform quants in [-127, 127] with the scale radius / 127, Q4_0 ones
// (q4_0.cu's) as uniform nibbles with the scale radius / 8, Q4_K ones (q4_k.cu's) as uniform nibbles.
#include <cuda_fp16.h>
#include "common.cuh"

__device__ __forceinline__ float uniform01(unsigned long long seed, unsigned long long i) {
  unsigned long long z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)(z >> 40) * (1.0f / 16777216.0f);
}

template <typename T>
__device__ void fill(T* dst, long long n, unsigned long long seed, float center, float radius) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    store_f(dst, i, center + radius * (2.0f * uniform01(seed, i) - 1.0f));
}

extern "C" __global__ void fill_uniform_f32(float* dst, long long n, unsigned long long seed, float center, float radius) {
  fill(dst, n, seed, center, radius);
}

extern "C" __global__ void fill_uniform_bf16(__nv_bfloat16* dst, long long n, unsigned long long seed, float center,
                                             float radius) {
  fill(dst, n, seed, center, radius);
}

// Q4_0 in q4_0.cu's layout: uniform bytes (two quants each), scale radius / 8.
extern "C" __global__ void fill_q4_0(uint8_t* qs, __half* scales, long long n, unsigned long long seed, float radius) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n / 2;
       i += (long long)gridDim.x * blockDim.x) {
    qs[i] = (uint8_t)min(255, (int)(256.f * uniform01(seed, i)));
    if (i % 16 == 0) scales[i / 16] = __float2half(radius / 8.f);
  }
}

// Q4_K in q4_k.cu's layout: uniform bytes (two quants each); every sub-block's scale and min 32, so
// that d = radius / 256 and dmin = radius / 32 give weights in [-radius, 0.875 radius].
extern "C" __global__ void fill_q4_k(uint8_t* qs, uint8_t* meta, long long n, unsigned long long seed, float radius) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n / 2;
       i += (long long)gridDim.x * blockDim.x) {
    qs[i] = (uint8_t)min(255, (int)(256.f * uniform01(seed, i)));
    if (i % 128 == 0) {
      uint8_t* m = meta + 16 * (i / 128);
      *reinterpret_cast<__half*>(m) = __float2half(radius / 256.f);
      *reinterpret_cast<__half*>(m + 2) = __float2half(radius / 32.f);
      for (int j = 0; j < 12; j++) m[4 + j] = j < 8 ? 160 : 0;  // 6-bit 32s: low bits here, high bits above
    }
  }
}

extern "C" __global__ void fill_q8_0(int8_t* qs, __half* scales, long long n, unsigned long long seed, float radius) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    qs[i] = (int8_t)(int)rintf(127.f * (2.0f * uniform01(seed, i) - 1.0f));
    if (i % 32 == 0) scales[i / 32] = __float2half(radius / 127.f);
  }
}

