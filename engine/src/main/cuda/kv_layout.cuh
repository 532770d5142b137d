// Where a token's key, value and block sums live in the paged KV cache (CudaKvCache owns the layout
// on the host; the numbers here must match it). A page holds KV_PAGE tokens of every layer:
//   keys   [layer][kv head][slot][dim]   element type T, at byte 0
//   values [layer][kv head][slot][dim]   element type T, at byte value_offset
//   fp8 pages only: key scales, then value scales [layer][kv head][slot] fp32, at 2 * value_offset
//   key sums and query sums [layer][granule][kv head][dim] fp32, at sum_offset and query_sum_offset,
// one granule per KV_GRANULE tokens: select-and-merge assembles block means of any size from them.
//
// An fp8 (e4m3) row is its fp32 row divided by its scale, the row's largest magnitude / FP8_MAX, so
// that every row uses e4m3's whole range: a scale per (token, kv head), finer than one per page and
// head, and a row is written once, so a page filled a token at a time never needs requantising.
#pragma once
#include <type_traits>
#include "common.cuh"

#define KV_PAGE 256
#define KV_GRANULE 16
#define FP8_MAX 448.f  // e4m3's largest finite value

template <typename T>
__device__ __forceinline__ T* kv_row(const long long* pages, long long byte_offset, int layer, int kv_heads,
                                     int head_dim, int head, int token) {
  char* page = (char*)pages[token / KV_PAGE] + byte_offset;
  size_t row = ((size_t)layer * kv_heads + head) * KV_PAGE + token % KV_PAGE;
  return (T*)page + row * head_dim;
}

// The scale of an fp8 page's key row (value = false) or value row (value = true). The keys of a page
// take value_offset bytes, their scales value_offset * 4 / head_dim.
__device__ __forceinline__ float* kv_scale(const long long* pages, long long value_offset, int layer, int kv_heads,
                                           int head_dim, int head, int token, bool value) {
  char* page = (char*)pages[token / KV_PAGE] + 2 * value_offset + (value ? value_offset * 4 / head_dim : 0);
  return (float*)page + ((size_t)layer * kv_heads + head) * KV_PAGE + token % KV_PAGE;
}

// One head's key or value row of a token as fp32 numbers: its elements times its scale (1 unless fp8).
template <typename T>
struct KvRow {
  const T* x;
  float scale;
  __device__ __forceinline__ float operator[](int d) const { return load_f(x, d) * scale; }
};

template <typename T>
__device__ __forceinline__ KvRow<T> kv_read(const long long* pages, long long value_offset, int layer, int kv_heads,
                                            int head_dim, int head, int token, bool value) {
  const T* x = kv_row<T>(pages, value ? value_offset : 0, layer, kv_heads, head_dim, head, token);
  if constexpr (std::is_same<T, fp8>::value) {
    return {x, *kv_scale(pages, value_offset, layer, kv_heads, head_dim, head, token, value)};
  } else {
    return {x, 1.f};
  }
}

// The rows of a run of consecutive tokens of one head in one page (token t0 + u's row at x + u * head_dim,
// its fp8 scale at scales[u]): one page lookup for the run.
template <typename T>
struct KvRun {
  const T* x;
  const float* scales;  // fp8 only
};

template <typename T>
__device__ __forceinline__ KvRun<T> kv_run(const long long* pages, long long value_offset, int layer, int kv_heads,
                                           int head_dim, int head, int t0, bool value) {
  const T* x = kv_row<T>(pages, value ? value_offset : 0, layer, kv_heads, head_dim, head, t0);
  const float* scales = nullptr;
  if constexpr (std::is_same<T, fp8>::value) {
    scales = kv_scale(pages, value_offset, layer, kv_heads, head_dim, head, t0, value);
  }
  return {x, scales};
}

__device__ __forceinline__ float* kv_sum_row(const long long* pages, long long sum_offset, int layer, int kv_heads,
                                             int head_dim, int head, int granule) {
  const int per_page = KV_PAGE / KV_GRANULE;
  char* page = (char*)pages[granule / per_page] + sum_offset;
  size_t row = ((size_t)layer * per_page + granule % per_page) * kv_heads + head;
  return (float*)page + row * head_dim;
}
