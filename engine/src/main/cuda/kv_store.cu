// Appends a chunk's keys (before RoPE) and values to the paged cache: block (t, kv head) copies one
// head row of token start + t, converting fp32 activations to the cache's element type.
#include "kv_layout.cuh"

template <typename T>
__device__ void store(const long long* pages, long long value_offset, int layer, int kv_heads, int head_dim,
                      int start, const float* k, const float* v) {
  int t = blockIdx.x, h = blockIdx.y;
  const float* kr = k + ((size_t)t * kv_heads + h) * head_dim;
  const float* vr = v + ((size_t)t * kv_heads + h) * head_dim;
  T* kd = kv_row<T>(pages, 0, layer, kv_heads, head_dim, h, start + t);
  T* vd = kv_row<T>(pages, value_offset, layer, kv_heads, head_dim, h, start + t);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    store_f(kd, d, kr[d]);
    store_f(vd, d, vr[d]);
  }
}

extern "C" __global__ void kv_store_f32(const long long* pages, long long value_offset, int layer, int kv_heads,
                                        int head_dim, int start, const float* k, const float* v) {
  store<float>(pages, value_offset, layer, kv_heads, head_dim, start, k, v);
}

extern "C" __global__ void kv_store_bf16(const long long* pages, long long value_offset, int layer, int kv_heads,
                                         int head_dim, int start, const float* k, const float* v) {
  store<__nv_bfloat16>(pages, value_offset, layer, kv_heads, head_dim, start, k, v);
}
