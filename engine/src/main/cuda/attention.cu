// Attention that executes an AttentionPlan: dense, select-and-merge and every position scheme are the
// same kernel walking other key-block lists with other positions.
//
// A block takes one work item: up to ATT_ROWS (query token, query head) rows that share a plan entry
// (tile, KV head), so the query heads of a KV head (GQA) share each key and value load. It walks the
// entry's key blocks ATT_KEYS keys at a time: loads them from the paged cache, rotates them to their
// positions (both Self-Extend branches when there are two), and each warp keeps an online softmax
// (running max, sum and output) for its rows, one key per lane. Under Self-Extend a (query, key) pair
// takes the branch its logical distance picks, before the one softmax, as CpuAttention does.
//
// Decode has few items, so the key list is also split over gridDim.y blocks; each writes its
// unnormalised output, max and sum, and attention_combine merges them. Keys come in token order, so
// a block stops at the first key after its last query (the causal mask).
#include <math_constants.h>
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

template <typename T>
__device__ void attend(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                       long long value_offset, int layer, int kv_heads, int head_dim, int group, const int* items,
                       const int* key_offsets, const int* key_blocks, const int* key_positions,
                       const int* query_shift, int block_size, int key_length, PositionMap map, RopeTables rope,
                       float scale, int chunks_per_split, float* part_o, float* part_ml) {
  extern __shared__ float smem[];
  const int* item = items + ATT_ITEM_INTS * blockIdx.x;
  int e = item[0], t0 = item[1], nt = item[2], g0 = item[3], ng = item[4];
  int kv_head = e % kv_heads, rows = nt * ng;
  bool two = map.window > 0;
  int D = head_dim, DP = head_dim + 1, half = head_dim / 2;
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  // Shared memory: queries and keys padded to DP floats a row (a lane reads its own key's row, so
  // rows must not share banks), the grouped branch only under Self-Extend, then values and indices.
  float* qn = smem;
  float* qg = two ? qn + ATT_ROWS * DP : qn;
  float* kn = qg + ATT_ROWS * DP;
  float* kg = two ? kn + ATT_KEYS * DP : kn;
  float* vs = kg + ATT_KEYS * DP;
  int* ktok = (int*)(vs + ATT_KEYS * D);
  int* klog = ktok + ATT_KEYS;
  int* qtok = klog + ATT_KEYS;
  int* qpos = qtok + ATT_ROWS;

  if (tid < ATT_ROWS) {
    bool valid = tid < rows;
    qtok[tid] = valid ? t0 + tid / ng : -1;  // -1: a padding row sees no key
    qpos[tid] = valid ? t0 + tid / ng + query_shift[e] : 0;
  }
  for (int idx = tid; idx < ATT_ROWS * D; idx += blockDim.x) {
    int r = idx / D, d = idx % D;
    float x = 0.f;
    if (r < rows) {
      int head = kv_head * group + g0 + r % ng;
      x = q[(size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)head * D + d];
    }
    qn[r * DP + d] = x;
    if (two) qg[r * DP + d] = x;
  }
  __syncthreads();
  for (int idx = tid; idx < ATT_ROWS * half; idx += blockDim.x) {
    int r = idx / half, i = idx % half;
    if (r < rows) {
      rope_rotate_pair(rope, qn + r * DP, half, i, map.neighbour(qpos[r]));
      if (two) rope_rotate_pair(rope, qg + r * DP, half, i, map.grouped_query(qpos[r]));
    }
  }

  float m[ATT_ROWS_PER_WARP], l[ATT_ROWS_PER_WARP], acc[ATT_ROWS_PER_WARP][ATT_DIMS_PER_LANE];
#pragma unroll
  for (int rr = 0; rr < ATT_ROWS_PER_WARP; rr++) {
    m[rr] = -CUDART_INF_F;
    l[rr] = 0.f;
#pragma unroll
    for (int i = 0; i < ATT_DIMS_PER_LANE; i++) acc[rr][i] = 0.f;
  }

  int from = key_offsets[e], to = key_offsets[e + 1];
  long long total = (long long)(to - from) * block_size;
  int chunks = (int)((total + ATT_KEYS - 1) / ATT_KEYS);
  int c0 = blockIdx.y * chunks_per_split, c1 = min(chunks, c0 + chunks_per_split);
  int last_query = t0 + nt - 1;
  for (int c = c0; c < c1; c++) {
    long long f0 = (long long)c * ATT_KEYS;
    int first_token = key_blocks[from + f0 / block_size] * block_size + (int)(f0 % block_size);
    if (first_token > last_query) break;
    __syncthreads();  // the previous step's keys and values are no longer read
    if (tid < ATT_KEYS) {
      long long f = f0 + tid;
      int token = INT_MAX, logical = 0;
      if (f < total) {
        int i = from + (int)(f / block_size), off = (int)(f % block_size);
        int t = key_blocks[i] * block_size + off;
        if (t < key_length) {
          token = t;
          logical = key_positions[i] + off;
        }
      }
      ktok[tid] = token;
      klog[tid] = logical;
    }
    __syncthreads();
    for (int idx = tid; idx < ATT_KEYS * D; idx += blockDim.x) {
      int j = idx / D, d = idx % D, token = ktok[j];
      float kx = 0.f, vx = 0.f;
      if (token != INT_MAX) {
        kx = load_f(kv_row<T>(pages, 0, layer, kv_heads, D, kv_head, token), d);
        vx = load_f(kv_row<T>(pages, value_offset, layer, kv_heads, D, kv_head, token), d);
      }
      kn[j * DP + d] = kx;
      if (two) kg[j * DP + d] = kx;
      vs[j * D + d] = vx;
    }
    __syncthreads();
    for (int idx = tid; idx < ATT_KEYS * half; idx += blockDim.x) {
      int j = idx / half, i = idx % half;
      if (ktok[j] != INT_MAX) {
        rope_rotate_pair(rope, kn + j * DP, half, i, map.neighbour(klog[j]));
        if (two) rope_rotate_pair(rope, kg + j * DP, half, i, map.grouped_key(klog[j]));
      }
    }
    __syncthreads();

    int key_token = ktok[lane];
    long long key_logical = klog[lane];
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS_PER_WARP; rr++) {
      int r = warp * ATT_ROWS_PER_WARP + rr;
      float s = -CUDART_INF_F;
      if (key_token <= qtok[r]) {
        bool grouped = map.grouped(qpos[r] - key_logical);
        const float* qv = (grouped ? qg : qn) + r * DP;
        const float* kv = (grouped ? kg : kn) + lane * DP;
        float dot = 0.f;
        for (int d = 0; d < D; d++) dot += qv[d] * kv[d];
        s = dot * scale;
      }
      float m_new = fmaxf(m[rr], warp_max(s));
      if (m_new == -CUDART_INF_F) continue;  // no visible key yet for this row (warp-uniform)
      float p = s == -CUDART_INF_F ? 0.f : expf(s - m_new);
      float correction = expf(m[rr] - m_new);
      l[rr] = l[rr] * correction + warp_sum(p);
      m[rr] = m_new;
#pragma unroll
      for (int i = 0; i < ATT_DIMS_PER_LANE; i++) acc[rr][i] *= correction;
      for (int j = 0; j < ATT_KEYS; j++) {
        float pj = __shfl_sync(0xffffffffu, p, j);
        if (pj == 0.f) continue;
#pragma unroll
        for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {
          int d = lane + 32 * i;
          if (d < D) acc[rr][i] += pj * vs[j * D + d];
        }
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < ATT_ROWS_PER_WARP; rr++) {
    int r = warp * ATT_ROWS_PER_WARP + rr;
    if (r >= rows) continue;
    if (part_o == nullptr) {
      int head = kv_head * group + g0 + r % ng;
      float* o = out + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)head * D;
      float inv = 1.0f / l[rr];
#pragma unroll
      for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {
        int d = lane + 32 * i;
        if (d < D) o[d] = acc[rr][i] * inv;
      }
    } else {
      size_t prow = ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * ATT_ROWS + r;
#pragma unroll
      for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {
        int d = lane + 32 * i;
        if (d < D) part_o[prow * D + d] = acc[rr][i];
      }
      if (lane == 0) {
        part_ml[2 * prow] = m[rr];
        part_ml[2 * prow + 1] = l[rr];
      }
    }
  }
}

#define ATTENTION_KERNEL(NAME, T)                                                                                  \
  extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) NAME(                                               \
      float* out, const float* q, int q_cols, int chunk_start, const long long* pages, long long value_offset,      \
      int layer, int kv_heads, int head_dim, int group, const int* items, const int* key_offsets,                  \
      const int* key_blocks, const int* key_positions, const int* query_shift, int block_size, int key_length,     \
      int se_group, int se_window, int period, const float* lo_cos, const float* lo_sin, const float* hi_cos,      \
      const float* hi_sin, float rope_factor, int interleaved, float scale, int chunks_per_split, float* part_o,    \
      float* part_ml) {                                                                                            \
    PositionMap map{se_group, se_window, period};                                                                  \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    attend<T>(out, q, q_cols, chunk_start, pages, value_offset, layer, kv_heads, head_dim, group, items,           \
              key_offsets, key_blocks, key_positions, query_shift, block_size, key_length, map, rope, scale,       \
              chunks_per_split, part_o, part_ml);                                                                  \
  }

ATTENTION_KERNEL(attention_f32, float)
ATTENTION_KERNEL(attention_bf16, __nv_bfloat16)
