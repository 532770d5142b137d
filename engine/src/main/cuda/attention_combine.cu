// Merges the splits of a split-key attention launch: each split left its unnormalised output, its
// running max m and sum l per row; the result is sum(o_s e^(m_s - M)) / sum(l_s e^(m_s - M)) with M
// the largest m_s. Block (item, row), thread per dimension. A split that saw no visible key has
// m = -inf and weighs nothing.
#include <math_constants.h>
#include "attention.cuh"

extern "C" __global__ void attention_combine(float* out, int q_cols, int chunk_start, int kv_heads, int head_dim,
                                             int group, const int* items, int splits, const float* part_o,
                                             const float* part_ml) {
  const int* item = items + ATT_ITEM_INTS * blockIdx.x;
  int e = item[0], t0 = item[1], nt = item[2], g0 = item[3], ng = item[4], r = blockIdx.y;
  if (r >= nt * ng) return;
  size_t stride = (size_t)gridDim.x * ATT_ROWS, row0 = (size_t)blockIdx.x * ATT_ROWS + r;
  float M = -CUDART_INF_F;
  for (int s = 0; s < splits; s++) M = fmaxf(M, part_ml[2 * (s * stride + row0)]);
  float L = 0.f;
  for (int s = 0; s < splits; s++) {
    float m = part_ml[2 * (s * stride + row0)];
    if (m != -CUDART_INF_F) L += part_ml[2 * (s * stride + row0) + 1] * expf(m - M);
  }
  int head = (e % kv_heads) * group + g0 + r % ng;
  float* o = out + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)head * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < splits; s++) {
      float m = part_ml[2 * (s * stride + row0)];
      if (m != -CUDART_INF_F) acc += part_o[(s * stride + row0) * head_dim + d] * expf(m - M);
    }
    o[d] = acc / L;
  }
}
