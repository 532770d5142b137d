// Merges the splits of a split-key attention launch: each split left its unnormalised output, its
// running max m and sum l per row; the result is sum(o_s e^(m_s - M)) / sum(l_s e^(m_s - M)) with M
// the largest m_s. Block (item, row): gridDim.y is at least the rows of the largest item. A split that
// saw no visible key has m = -inf and weighs nothing.
//
// Decode splits a few rows' keys over many blocks, so a row has tens of splits and the merge is a chain
// of dependent loads between two kernels of the step. Each warp first loads the outputs of its first
// COMBINE_HELD splits (every COMBINE_WARPS-th) into registers, its lanes over the dimensions, while the
// block turns every split's (m, l) into its weight e^(m_s - M) in shared memory; so the merge of up to
// COMBINE_WARPS * COMBINE_HELD splits waits for one round of loads. The warps' sums meet in shared memory.
#include <math_constants.h>
#include "attention.cuh"
#include "common.cuh"

#define COMBINE_MAX_SPLITS 1024
#define COMBINE_WARPS 8
#define COMBINE_THREADS (COMBINE_WARPS * 32)
#define COMBINE_HELD 8

extern "C" __global__ void __launch_bounds__(COMBINE_THREADS) attention_combine(
    float* out, int q_cols, int chunk_start, int kv_heads, int head_dim, int group, const int* items, int splits,
    const float* part_o, const float* part_ml) {
  __shared__ float weight[COMBINE_MAX_SPLITS];
  __shared__ float reduce[COMBINE_THREADS / 32];
  int r = blockIdx.y;
  size_t stride = (size_t)gridDim.x * ATT_ROWS, row0 = (size_t)blockIdx.x * ATT_ROWS + r;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;

  // Loaded before the work item is read, so as not to wait for it: a row past the item's is inside the
  // partial results' buffer all the same (gridDim.y <= ATT_ROWS), never written, and its values unused.
  constexpr int DIMS = ATT_MAX_DIM / 32;
  float held[COMBINE_HELD][DIMS];
#pragma unroll
  for (int i = 0; i < COMBINE_HELD; i++) {
    int s = warp + COMBINE_WARPS * i;
    const float* po = part_o + (s * stride + row0) * head_dim;
#pragma unroll
    for (int j = 0; j < DIMS; j++) {
      int d = lane + 32 * j;
      held[i][j] = s < splits && d < head_dim ? po[d] : 0.f;
    }
  }

  const int* item = items + ATT_ITEM_INTS * blockIdx.x;
  int e = item[0], t0 = item[1], nt = item[2], g0 = item[3], ng = item[4];
  if (r >= nt * ng) return;

  float M = -CUDART_INF_F;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) M = fmaxf(M, part_ml[2 * (s * stride + row0)]);
  M = warp_max(M);
  if (lane == 0) reduce[warp] = M;
  __syncthreads();
  M = reduce[0];
  for (int w = 1; w < warps; w++) M = fmaxf(M, reduce[w]);
  __syncthreads();

  float L = 0.f;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    float m = part_ml[2 * (s * stride + row0)];
    float c = m == -CUDART_INF_F ? 0.f : expf(m - M);
    weight[s] = c;
    L += c * part_ml[2 * (s * stride + row0) + 1];
  }
  L = warp_sum(L);
  if (lane == 0) reduce[warp] = L;
  __syncthreads();
  L = 0.f;
  for (int w = 0; w < warps; w++) L += reduce[w];

  float acc[DIMS];
#pragma unroll
  for (int j = 0; j < DIMS; j++) acc[j] = 0.f;
#pragma unroll
  for (int i = 0; i < COMBINE_HELD; i++) {
    int s = warp + COMBINE_WARPS * i;
    float c = s < splits ? weight[s] : 0.f;
#pragma unroll
    for (int j = 0; j < DIMS; j++) acc[j] += held[i][j] * c;
  }
#pragma unroll 4
  for (int s = warp + COMBINE_WARPS * COMBINE_HELD; s < splits; s += COMBINE_WARPS) {
    const float* po = part_o + (s * stride + row0) * head_dim;
    float c = weight[s];
#pragma unroll
    for (int j = 0; j < DIMS; j++) {
      int d = lane + 32 * j;
      if (d < head_dim) acc[j] += po[d] * c;
    }
  }
  __shared__ float sums[COMBINE_WARPS][ATT_MAX_DIM];
#pragma unroll
  for (int j = 0; j < DIMS; j++) {
    int d = lane + 32 * j;
    if (d < head_dim) sums[warp][d] = acc[j];
  }
  __syncthreads();

  int head = (e % kv_heads) * group + g0 + r % ng;
  float* o = out + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)head * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < COMBINE_WARPS; w++) sum += sums[w][d];
    o[d] = sum / L;
  }
}
