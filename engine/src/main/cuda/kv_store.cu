// Appends a chunk's keys (before RoPE) and values to the paged cache: block (t, kv head) copies one
// head row of token start + t, converting fp32 activations to the cache's element type; into fp8
// pages with the row's scale (kv_layout.cuh), found by a reduction over the block's threads.
#include "kv_layout.cuh"

#define KV_STORE_MAX_WARPS 8

// The largest magnitude in row[0, n), for every thread of the block.
__device__ float block_amax(const float* row, int n) {
  __shared__ float warps[KV_STORE_MAX_WARPS];
  float m = 0.f;
  for (int d = threadIdx.x; d < n; d += blockDim.x) m = fmaxf(m, fabsf(row[d]));
  m = warp_max(m);
  __syncthreads();  // an earlier call's readers are done with warps[]
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = m;
  __syncthreads();
  m = 0.f;
  for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++) m = fmaxf(m, warps[w]);
  return m;
}

template <typename T>
__device__ void store_row(const long long* pages, long long value_offset, int layer, int kv_heads, int head_dim,
                          int head, int token, const float* src, bool value) {
  T* dst = kv_row<T>(pages, value ? value_offset : 0, layer, kv_heads, head_dim, head, token);
  if constexpr (std::is_same<T, fp8>::value) {
    float amax = block_amax(src, head_dim);
    float inv = amax > 0.f ? FP8_MAX / amax : 0.f;  // a row of zeros stays zeros, with scale 0
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) dst[d] = fp8(src[d] * inv);
    if (threadIdx.x == 0) *kv_scale(pages, value_offset, layer, kv_heads, head_dim, head, token, value) = amax / FP8_MAX;
  } else {
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) store_f(dst, d, src[d]);
  }
}

template <typename T>
__device__ void store(const long long* pages, long long value_offset, int layer, int kv_heads, int head_dim,
                      int start, const float* k, const float* v) {
  int t = blockIdx.x, h = blockIdx.y;
  size_t row = ((size_t)t * kv_heads + h) * head_dim;
  store_row<T>(pages, value_offset, layer, kv_heads, head_dim, h, start + t, k + row, false);
  store_row<T>(pages, value_offset, layer, kv_heads, head_dim, h, start + t, v + row, true);
}

#define KV_STORE_KERNEL(NAME, T)                                                                                  \
  extern "C" __global__ void NAME(const long long* pages, long long value_offset, int layer, int kv_heads,         \
                                  int head_dim, int start, const float* k, const float* v) {                      \
    store<T>(pages, value_offset, layer, kv_heads, head_dim, start, k, v);                                        \
  }

KV_STORE_KERNEL(kv_store_f32, float)
KV_STORE_KERNEL(kv_store_bf16, __nv_bfloat16)
KV_STORE_KERNEL(kv_store_fp8, fp8)
