// Shared device helpers: element access for the storage types that weights and KV pages use (fp32,
// bf16; fp8 e4m3 for KV pages only, read here and written by kv_store.cu with its scale), and warp
// reductions. Every kernel computes in fp32 whatever it stores.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <stdint.h>

typedef __nv_fp8_e4m3 fp8;

__device__ __forceinline__ float load_f(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load_f(const __nv_bfloat16* p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float load_f(const fp8* p, size_t i) { return static_cast<float>(p[i]); }
__device__ __forceinline__ void store_f(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f(__nv_bfloat16* p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// Stores four fp32 values at float4 index i of o and, when o16 is not null, rounded to bf16 at the same
// index of o16 (16- and 8-byte aligned): an activation that a bf16 GEMM reads next. o may be null where
// that GEMM is the activation's only reader.
__device__ __forceinline__ void store4(float4* o, __nv_bfloat16* o16, long long i, float4 v) {
  if (o) o[i] = v;
  if (o16) {
    __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
    reinterpret_cast<uint2*>(o16)[i] = make_uint2(*reinterpret_cast<unsigned*>(&a), *reinterpret_cast<unsigned*>(&b));
  }
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The end of a quantized GEMV block's dot products: each of its WARPS warps holds this lane's share
// (acc) of W row sums; they meet in shared memory (partial) and sums[w] holds row w's total, visible to
// the whole block, once every thread has returned. partial may be used again then.
template <int W, int WARPS>
__device__ __forceinline__ void block_row_sums(const float (&acc)[W], float (&partial)[WARPS][W], float (&sums)[W]) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int w = 0; w < W; w++) {
    float sum = warp_sum(acc[w]);
    if (lane == 0) partial[warp][w] = sum;
  }
  __syncthreads();
  if (threadIdx.x < W) {
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < WARPS; i++) sum += partial[i][threadIdx.x];
    sums[threadIdx.x] = sum;
  }
  __syncthreads();
}

// The end of a one-token SwiGLU GEMV block: y[row0 + w] = silu(g[w]) * u[w] for its W rows (the block's
// row sums of the gate and up products, from block_row_sums), those before out.
template <int W>
__device__ __forceinline__ void store_swiglu_rows(float* y, const float (&g)[W], const float (&u)[W], int row0,
                                                  int out) {
  if (threadIdx.x < W && row0 + threadIdx.x < out) {
    float a = g[threadIdx.x];
    y[row0 + threadIdx.x] = a / (1.0f + expf(-a)) * u[threadIdx.x];
  }
}

// __launch_bounds__ asking for at least BLOCKS blocks a multiprocessor on Hopper, where the kernels that
// use it were measured; other architectures keep the compiler's register counts.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define HOPPER_BOUNDS(THREADS, BLOCKS) __launch_bounds__(THREADS, BLOCKS)
#else
#define HOPPER_BOUNDS(THREADS, BLOCKS) __launch_bounds__(THREADS)
#endif

// 2^x in one instruction (MUFU.EX2); 2^-inf = 0, and results below 2^-126 flush to 0.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The token of an embedding gather's block: tokens[blockIdx.x], or `token` when tokens is null (a decode
// step's one token, passed by value so that the step starts with a kernel, not a copy).
__device__ __forceinline__ int embed_token(const int* tokens, int token) {
  return tokens ? tokens[blockIdx.x] : token;
}
