// Appending keys (before RoPE) and values to the paged cache: converting the fp32 activations to the
// cache's element type (into fp8 pages with each row's scale, kv_layout.cuh, found by a reduction over
// the block's threads), and adding them to the per-granule sums of keys and queries (the mean of a KV
// head's query heads), the material of select-and-merge's block means. One block does a granule of one
// KV head, tokens in order, a thread per dimension; a granule whose first token is in the chunk starts
// afresh, which also clears what a truncation left there. The sums are of the fp32 activations, so they
// do not depend on the cache's type. kv_store.cu launches it; attention_decode.cu does a decode token's
// in the block that reads it first.
#pragma once
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

// The chunk's tokens of granule `granule` and KV head h, by the whole block.
template <typename T>
__device__ void store(const long long* pages, long long value_offset, long long key_sum_offset,
                      long long query_sum_offset, int layer, int kv_heads, int head_dim, int group, int start,
                      int tokens, const float* q, const float* k, const float* v, int granule, int h) {
  int first = granule * KV_GRANULE, from = max(first, start), to = min(first + KV_GRANULE, start + tokens);
  for (int t = from; t < to; t++) {
    size_t row = ((size_t)(t - start) * kv_heads + h) * head_dim;
    store_row<T>(pages, value_offset, layer, kv_heads, head_dim, h, t, k + row, false);
    store_row<T>(pages, value_offset, layer, kv_heads, head_dim, h, t, v + row, true);
  }
  float* ks = kv_sum_row(pages, key_sum_offset, layer, kv_heads, head_dim, h, granule);
  float* qs = kv_sum_row(pages, query_sum_offset, layer, kv_heads, head_dim, h, granule);
  float inv_group = 1.0f / group;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float ka = from == first ? 0.f : ks[d], qa = from == first ? 0.f : qs[d];
    for (int t = from; t < to; t++) {
      size_t row = t - start;
      ka += k[(row * kv_heads + h) * head_dim + d];
      float mean = 0.f;
      for (int g = 0; g < group; g++) mean += inv_group * q[(row * kv_heads * group + h * group + g) * head_dim + d];
      qa += mean;
    }
    ks[d] = ka;
    qs[d] = qa;
  }
}

// store() of one token (a decode step's) into bf16 pages, in fewer instructions, for kernels that do it
// beside their own work (attention_decode.cu's); not inlined where the compiler agrees (4 KB less fatbin).
__device__ __noinline__ void store_token_bf16(const long long* pages, long long value_offset, long long key_sum_offset,
                                              long long query_sum_offset, int layer, int kv_heads, int head_dim,
                                              int group, int token, const float* q, const float* k, const float* v,
                                              int h) {
  store_row<__nv_bfloat16>(pages, value_offset, layer, kv_heads, head_dim, h, token, k + (size_t)h * head_dim, false);
  store_row<__nv_bfloat16>(pages, value_offset, layer, kv_heads, head_dim, h, token, v + (size_t)h * head_dim, true);
  int granule = token / KV_GRANULE;
  bool fresh = token % KV_GRANULE == 0;
  float* ks = kv_sum_row(pages, key_sum_offset, layer, kv_heads, head_dim, h, granule);
  float* qs = kv_sum_row(pages, query_sum_offset, layer, kv_heads, head_dim, h, granule);
  float inv_group = 1.0f / group;
#pragma unroll 1
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float mean = 0.f;
#pragma unroll 1
    for (int g = 0; g < group; g++) mean += inv_group * q[((size_t)h * group + g) * head_dim + d];
    ks[d] = (fresh ? 0.f : ks[d]) + k[(size_t)h * head_dim + d];
    qs[d] = (fresh ? 0.f : qs[d]) + mean;
  }
}
