// Select-and-merge block scoring: means of complete blocks assembled from granule sums, then the dot
// products of query-block means with key-block means (selection MEAN), or with the element-wise
// bounds of each key block (selection BOUND), for block_topk to rank.
#include "kv_layout.cuh"

// means[(b - first_block)][head][dim] for blocks [first_block, first_block + gridDim.x).
extern "C" __global__ void block_means(const long long* pages, long long sum_offset, int layer, int kv_heads,
                                       int head_dim, int block_size, int first_block, float* means) {
  int block = first_block + blockIdx.x, h = blockIdx.y, per_block = block_size / KV_GRANULE;
  float inv = 1.0f / block_size;
  float* out = means + ((size_t)blockIdx.x * kv_heads + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.f;
    for (int g = block * per_block; g < (block + 1) * per_block; g++)
      acc += inv * kv_sum_row(pages, sum_offset, layer, kv_heads, head_dim, h, g)[d];
    out[d] = acc;
  }
}

// scores[head][query block][key block] = dot(query mean, key mean); one warp per score.
extern "C" __global__ void block_scores(const float* query_means, const float* key_means, int query_blocks,
                                        int key_blocks, int kv_heads, int head_dim, float* scores) {
  long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  long long total = (long long)kv_heads * query_blocks * key_blocks;
  if (warp >= total) return;
  int kb = warp % key_blocks, qb = (warp / key_blocks) % query_blocks, h = warp / ((long long)key_blocks * query_blocks);
  const float* qm = query_means + ((size_t)qb * kv_heads + h) * head_dim;
  const float* km = key_means + ((size_t)kb * kv_heads + h) * head_dim;
  float acc = 0.f;
  for (int d = lane; d < head_dim; d += 32) acc += qm[d] * km[d];
  acc = warp_sum(acc);
  if (lane == 0) scores[warp] = acc;
}

// Element-wise minimum and maximum of each complete block's keys (selection BOUND), read from the
// paged keys: lo/hi[block][head][dim] for blocks [0, gridDim.x).
template <typename T>
__device__ void block_key_bounds(const long long* pages, long long value_offset, int layer, int kv_heads,
                                 int head_dim, int block_size, float* lo, float* hi) {
  int block = blockIdx.x, h = blockIdx.y;
  size_t at = ((size_t)block * kv_heads + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float mn = INFINITY, mx = -INFINITY;
    for (int t = block * block_size; t < (block + 1) * block_size; t++) {
      float k = kv_read<T>(pages, value_offset, layer, kv_heads, head_dim, h, t, false)[d];
      mn = fminf(mn, k);
      mx = fmaxf(mx, k);
    }
    lo[at + d] = mn;
    hi[at + d] = mx;
  }
}

#define BLOCK_KEY_BOUNDS_KERNEL(NAME, T)                                                                           \
  extern "C" __global__ void NAME(const long long* pages, long long value_offset, int layer, int kv_heads,         \
                                  int head_dim, int block_size, float* lo, float* hi) {                           \
    block_key_bounds<T>(pages, value_offset, layer, kv_heads, head_dim, block_size, lo, hi);                      \
  }

BLOCK_KEY_BOUNDS_KERNEL(block_key_bounds_f32, float)
BLOCK_KEY_BOUNDS_KERNEL(block_key_bounds_bf16, __nv_bfloat16)
BLOCK_KEY_BOUNDS_KERNEL(block_key_bounds_fp8, fp8)

// scores[head][query block][key block] = Σ_d max(q_d·lo_d, q_d·hi_d): the largest q·k any key of the
// block can reach (selection BOUND); one warp per score.
extern "C" __global__ void block_bound_scores(const float* query_means, const float* key_lo, const float* key_hi,
                                              int query_blocks, int key_blocks, int kv_heads, int head_dim,
                                              float* scores) {
  long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  long long total = (long long)kv_heads * query_blocks * key_blocks;
  if (warp >= total) return;
  int kb = warp % key_blocks, qb = (warp / key_blocks) % query_blocks, h = warp / ((long long)key_blocks * query_blocks);
  const float* qm = query_means + ((size_t)qb * kv_heads + h) * head_dim;
  size_t k = ((size_t)kb * kv_heads + h) * head_dim;
  float acc = 0.f;
  for (int d = lane; d < head_dim; d += 32) acc += fmaxf(qm[d] * key_lo[k + d], qm[d] * key_hi[k + d]);
  acc = warp_sum(acc);
  if (lane == 0) scores[warp] = acc;
}
