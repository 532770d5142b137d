// Merges the splits of a split-key attention launch: each split left its unnormalised output, its
// running max m and sum l per row; the result is sum(o_s e^(m_s - M)) / sum(l_s e^(m_s - M)) with M
// the largest m_s. Block (item, row), thread per dimension. A split that saw no visible key has
// m = -inf and weighs nothing.
//
// Decode splits a few rows' keys over many blocks, so a row has tens of splits: the block first turns
// every split's (m, l) into its weight e^(m_s - M) in shared memory, together, and each thread then
// sums its dimension over the splits with independent loads.
#include <math_constants.h>
#include "attention.cuh"
#include "common.cuh"

#define COMBINE_MAX_SPLITS 1024
#define COMBINE_THREADS 128

extern "C" __global__ void __launch_bounds__(COMBINE_THREADS) attention_combine(
    float* out, int q_cols, int chunk_start, int kv_heads, int head_dim, int group, const int* items, int splits,
    const float* part_o, const float* part_ml) {
  __shared__ float weight[COMBINE_MAX_SPLITS];
  __shared__ float reduce[COMBINE_THREADS / 32];
  const int* item = items + ATT_ITEM_INTS * blockIdx.x;
  int e = item[0], t0 = item[1], nt = item[2], g0 = item[3], ng = item[4], r = blockIdx.y;
  if (r >= nt * ng) return;
  size_t stride = (size_t)gridDim.x * ATT_ROWS, row0 = (size_t)blockIdx.x * ATT_ROWS + r;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;

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

  int head = (e % kv_heads) * group + g0 + r % ng;
  float* o = out + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)head * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.f;
#pragma unroll 8
    for (int s = 0; s < splits; s++) acc += part_o[(s * stride + row0) * head_dim + d] * weight[s];
    o[d] = acc / L;
  }
}
