// Appends a chunk's keys (before RoPE) and values to the paged cache and adds them to the per-granule
// sums (kv_store.cuh): block (granule of the chunk, kv head). A decode step's token is stored by
// attention_decode.cu instead, when that kernel reads it.
#include "kv_store.cuh"

#define KV_STORE_KERNEL(NAME, T)                                                                                  \
  extern "C" __global__ void NAME(const long long* pages, long long value_offset, long long key_sum_offset,       \
                                  long long query_sum_offset, int layer, int kv_heads, int head_dim, int group,   \
                                  int start, int tokens, const float* q, const float* k, const float* v) {        \
    store<T>(pages, value_offset, key_sum_offset, query_sum_offset, layer, kv_heads, head_dim, group, start,       \
             tokens, q, k, v, start / KV_GRANULE + blockIdx.x, blockIdx.y);                                       \
  }

KV_STORE_KERNEL(kv_store_f32, float)
KV_STORE_KERNEL(kv_store_bf16, __nv_bfloat16)
KV_STORE_KERNEL(kv_store_fp8, fp8)
