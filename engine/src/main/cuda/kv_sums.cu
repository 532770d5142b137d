// Per-granule sums of a chunk's keys and queries (the mean of a KV head's query heads), the material
// of select-and-merge's block means. Block (granule, kv head), thread per dimension, tokens in order;
// a granule whose first token is in the chunk starts afresh, which also clears what a truncation
// left there. Keys and queries are the fp32 activations, so sums do not depend on the cache's type.
#include "kv_layout.cuh"

extern "C" __global__ void kv_sums(const long long* pages, long long key_sum_offset, long long query_sum_offset,
                                   int layer, int kv_heads, int head_dim, int group, int start, int tokens,
                                   const float* q, const float* k) {
  int granule = start / KV_GRANULE + blockIdx.x, h = blockIdx.y;
  int first = granule * KV_GRANULE, from = max(first, start), to = min(first + KV_GRANULE, start + tokens);
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
