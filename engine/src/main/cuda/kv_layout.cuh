// Where a token's key, value and block sums live in the paged KV cache (CudaKvCache owns the layout
// on the host; the numbers here must match it). A page holds KV_PAGE tokens of every layer:
//   keys   [layer][kv head][slot][dim]   element type T, at byte 0
//   values [layer][kv head][slot][dim]   element type T, at byte value_offset
//   key sums and query sums [layer][granule][kv head][dim] fp32, at sum_offset and query_sum_offset,
// one granule per KV_GRANULE tokens: select-and-merge assembles block means of any size from them.
#pragma once
#include "common.cuh"

#define KV_PAGE 256
#define KV_GRANULE 16

template <typename T>
__device__ __forceinline__ T* kv_row(const long long* pages, long long byte_offset, int layer, int kv_heads,
                                     int head_dim, int head, int token) {
  char* page = (char*)pages[token / KV_PAGE] + byte_offset;
  size_t row = ((size_t)layer * kv_heads + head) * KV_PAGE + token % KV_PAGE;
  return (T*)page + row * head_dim;
}

__device__ __forceinline__ float* kv_sum_row(const long long* pages, long long sum_offset, int layer, int kv_heads,
                                             int head_dim, int head, int granule) {
  const int per_page = KV_PAGE / KV_GRANULE;
  char* page = (char*)pages[granule / per_page] + sum_offset;
  size_t row = ((size_t)layer * per_page + granule % per_page) * kv_heads + head;
  return (float*)page + row * head_dim;
}
