// Select-and-merge block scoring: means of complete blocks assembled from granule sums, or the
// element-wise bounds of each complete block's keys, then the dot products of query-block means with
// key-block means (selection MEAN), or with the bounds (BOUND, QUERY), for block_topk to rank. The
// key blocks' summaries are kept by the KV cache between chunks (CudaKvCache.BlockSummaries): a chunk
// computes those of the blocks completed since the last.
#include "kv_layout.cuh"

#define SCORE_MAX_DIMS_PER_LANE 8  // head_dim up to 256

// means[b - first_block][head][dim] for blocks [first_block, first_block + gridDim.x).
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

// The query side of a decode token that ranks with its own query (selection QUERY): the mean of each KV
// head's query heads, means[head][dim], from the token's queries q[(head·group + g)·head_dim + dim] (before
// RoPE, as the sums are), accumulated as the CPU backend does.
extern "C" __global__ void token_query_means(const float* q, int group, int head_dim, float* means) {
  int h = blockIdx.x;
  float inv = 1.0f / group;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.f;
    for (int g = 0; g < group; g++) acc = fmaf(q[((size_t)h * group + g) * head_dim + d], inv, acc);
    means[(size_t)h * head_dim + d] = acc;
  }
}

// Element-wise minimum and maximum of the keys of blocks [first_block, first_block + gridDim.x) (selection
// BOUND), read from the paged keys: lo/hi[block][head][dim].
template <typename T>
__device__ void block_key_bounds(const long long* pages, long long value_offset, int layer, int kv_heads,
                                 int head_dim, int block_size, int first_block, float* lo, float* hi) {
  int block = first_block + blockIdx.x, h = blockIdx.y;
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
                                  int head_dim, int block_size, int first_block, float* lo, float* hi) {          \
    block_key_bounds<T>(pages, value_offset, layer, kv_heads, head_dim, block_size, first_block, lo, hi);         \
  }

BLOCK_KEY_BOUNDS_KERNEL(block_key_bounds_f32, float)
BLOCK_KEY_BOUNDS_KERNEL(block_key_bounds_bf16, __nv_bfloat16)
BLOCK_KEY_BOUNDS_KERNEL(block_key_bounds_fp8, fp8)

// scores[head][query block][key block] for every query block; one warp per (head, key block), which
// reads its key block's summary once (lo, and hi under BOUND) and keeps it in registers: the summaries
// of a long sequence are read once per chunk rather than once per query block. MEAN: dot(query mean,
// key mean); BOUND: Σ_d max(q_d·lo_d, q_d·hi_d), the largest q·k any key of the block can reach.
// Lane l sums dimensions l, l + 32, ... in order, then the warp adds the lanes' sums.
template <bool BOUND>
__device__ void score_blocks(const float* query_means, const float* key_lo, const float* key_hi, int query_blocks,
                             int key_blocks, int kv_heads, int head_dim, float* scores) {
  long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (warp >= (long long)kv_heads * key_blocks) return;
  int kb = warp % key_blocks, h = warp / key_blocks;
  size_t k = ((size_t)kb * kv_heads + h) * head_dim;
  float lo[SCORE_MAX_DIMS_PER_LANE], hi[SCORE_MAX_DIMS_PER_LANE];
#pragma unroll
  for (int i = 0; i < SCORE_MAX_DIMS_PER_LANE; i++) {
    int d = lane + 32 * i;
    lo[i] = d < head_dim ? key_lo[k + d] : 0.f;
    hi[i] = BOUND && d < head_dim ? key_hi[k + d] : 0.f;
  }
  for (int qb = 0; qb < query_blocks; qb++) {
    const float* qm = query_means + ((size_t)qb * kv_heads + h) * head_dim;
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < SCORE_MAX_DIMS_PER_LANE; i++) {
      int d = lane + 32 * i;
      if (d < head_dim) acc += BOUND ? fmaxf(qm[d] * lo[i], qm[d] * hi[i]) : qm[d] * lo[i];
    }
    acc = warp_sum(acc);
    if (lane == 0) scores[((size_t)h * query_blocks + qb) * key_blocks + kb] = acc;
  }
}

extern "C" __global__ void block_scores(const float* query_means, const float* key_means, int query_blocks,
                                        int key_blocks, int kv_heads, int head_dim, float* scores) {
  score_blocks<false>(query_means, key_means, nullptr, query_blocks, key_blocks, kv_heads, head_dim, scores);
}

extern "C" __global__ void block_bound_scores(const float* query_means, const float* key_lo, const float* key_hi,
                                              int query_blocks, int key_blocks, int kv_heads, int head_dim,
                                              float* scores) {
  score_blocks<true>(query_means, key_lo, key_hi, query_blocks, key_blocks, kv_heads, head_dim, scores);
}
