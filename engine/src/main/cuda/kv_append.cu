// Appends tokens [from, from + count) of another sequence's paged cache (src) at token dst_start of
// this one (dst), in one layer: keys and values copied as stored (with their scales in fp8 pages),
// and the key and query sums of the granules they land in updated as kv_store would have (a granule
// whose first token arrives starts afresh). A token's query, which no cache keeps, counts as the mean
// query of its granule in the source, which holds src_length tokens. Block (granule, kv head), thread
// per dimension.
#include "kv_layout.cuh"

template <typename T>
__device__ void append(const long long* dst, const long long* src, long long value_offset, long long key_sum_offset,
                       long long query_sum_offset, int layer, int kv_heads, int head_dim, int dst_start, int from,
                       int count, int src_length) {
  constexpr bool scaled = std::is_same<T, fp8>::value;
  int granule = dst_start / KV_GRANULE + blockIdx.x, h = blockIdx.y;
  int first = granule * KV_GRANULE, t0 = max(first, dst_start), t1 = min(first + KV_GRANULE, dst_start + count);
  float* ks = kv_sum_row(dst, key_sum_offset, layer, kv_heads, head_dim, h, granule);
  float* qs = kv_sum_row(dst, query_sum_offset, layer, kv_heads, head_dim, h, granule);
  if (scaled && threadIdx.x == 0) {
    for (int t = t0; t < t1; t++) {
      int s = from + t - dst_start;
      for (int value = 0; value < 2; value++)
        *kv_scale(dst, value_offset, layer, kv_heads, head_dim, h, t, value) =
            *kv_scale(src, value_offset, layer, kv_heads, head_dim, h, s, value);
    }
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float ka = t0 == first ? 0.f : ks[d], qa = t0 == first ? 0.f : qs[d];
    for (int t = t0; t < t1; t++) {
      int s = from + t - dst_start, sg = s / KV_GRANULE;
      KvRow<T> k = kv_read<T>(src, value_offset, layer, kv_heads, head_dim, h, s, false);
      const T* v = kv_row<T>(src, value_offset, layer, kv_heads, head_dim, h, s);
      kv_row<T>(dst, 0, layer, kv_heads, head_dim, h, t)[d] = k.x[d];
      kv_row<T>(dst, value_offset, layer, kv_heads, head_dim, h, t)[d] = v[d];
      ka += k[d];
      qa += kv_sum_row(src, query_sum_offset, layer, kv_heads, head_dim, h, sg)[d] /
            (float)min(KV_GRANULE, src_length - sg * KV_GRANULE);
    }
    ks[d] = ka;
    qs[d] = qa;
  }
}

#define KV_APPEND_KERNEL(NAME, T)                                                                                  \
  extern "C" __global__ void NAME(const long long* dst, const long long* src, long long value_offset,              \
                                  long long key_sum_offset, long long query_sum_offset, int layer, int kv_heads,   \
                                  int head_dim, int dst_start, int from, int count, int src_length) {              \
    append<T>(dst, src, value_offset, key_sum_offset, query_sum_offset, layer, kv_heads, head_dim, dst_start,      \
              from, count, src_length);                                                                            \
  }

KV_APPEND_KERNEL(kv_append_f32, float)
KV_APPEND_KERNEL(kv_append_bf16, __nv_bfloat16)
KV_APPEND_KERNEL(kv_append_fp8, fp8)
