// Attention for one query token (decode), executing the same plans as attention.cu for bf16 or fp8 pages with
// one position branch (not Self-Extend): a work item is the token's query heads of one KV head (the
// GQA group, up to DEC_MAX_GROUP), its keys split over gridDim.y blocks as attention.cu splits them,
// with the same partial results, so that attention_combine merges both.
//
// Decode reads every selected key once for a handful of query rows, so it is bound by memory: a warp
// takes DEC_UNROLL keys at a time, issuing all their loads before using any, its lanes reading each
// key's dimensions together (coalesced), rotating their pairs to the key's plan position and summing
// the products with each query head by a warp reduction; the warp then moves the heads' online
// softmax once for the batch and adds the keys' values, read the same way. The block's warps take
// every DEC_WARPS-th key and merge their softmax states at the end.
#include <math_constants.h>
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

#define DEC_WARPS 4
#define DEC_MAX_GROUP 8
#define DEC_UNROLL 4

template <typename T, int PAIRS>  // rotation pairs per lane: head_dim / 64
__device__ void attend_decode(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                              long long value_offset, int layer, int kv_heads, int head_dim, int group,
                              const int* items, const int* key_offsets, const int* key_blocks,
                              const int* key_positions, const int* query_shift, int block_size, int key_length,
                              PositionMap map, RopeTables rope, float scale, int chunks_per_split, float* part_o,
                              float* part_ml) {
  constexpr int DPL = 2 * PAIRS;  // dimensions per lane: both halves of each pair
  __shared__ float wm[DEC_WARPS][DEC_MAX_GROUP], wl[DEC_WARPS][DEC_MAX_GROUP];
  __shared__ float wo[DEC_WARPS][DEC_MAX_GROUP][DPL * 32];
  const int* item = items + ATT_ITEM_INTS * blockIdx.x;
  int e = item[0], token = item[1], g0 = item[3], ng = item[4];
  int kv_head = e % kv_heads, half = head_dim / 2;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  // This lane's dimensions: pair i = lane + 32 p rotates dims a(i) and b(i).
  int dim[DPL];
#pragma unroll
  for (int p = 0; p < PAIRS; p++) {
    dim[2 * p] = rope_first(rope, half, lane + 32 * p);
    dim[2 * p + 1] = rope_second(rope, half, lane + 32 * p);
  }
  float qr[DEC_MAX_GROUP][DPL];
  long long qpos = map.neighbour((long long)token + query_shift[e]);
#pragma unroll
  for (int p = 0; p < PAIRS; p++) {
    float c, s;
    rope_cos_sin(rope, half, lane + 32 * p, qpos, &c, &s);
#pragma unroll
    for (int h = 0; h < DEC_MAX_GROUP; h++) {
      float x0 = 0.f, x1 = 0.f;
      if (h < ng) {
        const float* qh = q + (size_t)(token - chunk_start) * q_cols + (size_t)(kv_head * group + g0 + h) * head_dim;
        x0 = qh[dim[2 * p]];
        x1 = qh[dim[2 * p + 1]];
      }
      qr[h][2 * p] = (x0 * c - x1 * s) * scale;
      qr[h][2 * p + 1] = (x1 * c + x0 * s) * scale;
    }
  }

  float m[DEC_MAX_GROUP], l[DEC_MAX_GROUP], acc[DEC_MAX_GROUP][DPL];
#pragma unroll
  for (int h = 0; h < DEC_MAX_GROUP; h++) {
    m[h] = -CUDART_INF_F;
    l[h] = 0.f;
#pragma unroll
    for (int j = 0; j < DPL; j++) acc[h][j] = 0.f;
  }

  int from = key_offsets[e], to = key_offsets[e + 1];
  long long total = (long long)(to - from) * block_size;
  long long k0 = (long long)blockIdx.y * chunks_per_split * ATT_KEYS;
  long long k1 = min(total, k0 + (long long)chunks_per_split * ATT_KEYS);
  // DEC_UNROLL keys in flight per warp (f, f + DEC_WARPS, ...): decode is bound by the latency of their
  // loads, so they are all issued before any is used, and the softmax state moves once per batch.
  for (long long f = k0 + warp; f < k1; f += DEC_UNROLL * DEC_WARPS) {
    float k[DEC_UNROLL][DPL], v[DEC_UNROLL][DPL];
    bool seen[DEC_UNROLL], any = false, past = false;
#pragma unroll
    for (int u = 0; u < DEC_UNROLL; u++) {
      long long fu = f + u * DEC_WARPS;
      int logical = 0;
      int t = fu < k1 ? plan_key(key_blocks, key_positions, from, total, block_size, key_length, fu, &logical)
                      : INT_MAX;
      seen[u] = t <= token;
      any |= seen[u];
      past |= t != INT_MAX && t > token;
      if (!seen[u]) {
#pragma unroll
        for (int j = 0; j < DPL; j++) v[u][j] = 0.f;  // weighs 0, and 0 * garbage may be NaN
        continue;
      }
      long long kpos = map.neighbour(logical);
      KvRow<T> kr = kv_read<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t, false);
      KvRow<T> vr = kv_read<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t, true);
#pragma unroll
      for (int p = 0; p < PAIRS; p++) {
        float c, s;
        rope_cos_sin(rope, half, lane + 32 * p, kpos, &c, &s);
        float x0 = kr[dim[2 * p]], x1 = kr[dim[2 * p + 1]];
        k[u][2 * p] = x0 * c - x1 * s;
        k[u][2 * p + 1] = x1 * c + x0 * s;
        v[u][2 * p] = vr[dim[2 * p]];
        v[u][2 * p + 1] = vr[dim[2 * p + 1]];
      }
    }
    if (any) {  // warp-uniform
#pragma unroll
      for (int h = 0; h < DEC_MAX_GROUP; h++) {
        if (h >= ng) continue;  // not break: constant indices keep the arrays in registers
        float x[DEC_UNROLL], mx = -CUDART_INF_F;
#pragma unroll
        for (int u = 0; u < DEC_UNROLL; u++) {
          float dot = 0.f;
#pragma unroll
          for (int j = 0; j < DPL; j++) dot += qr[h][j] * k[u][j];
          x[u] = seen[u] ? warp_sum(dot) : -CUDART_INF_F;
          mx = fmaxf(mx, x[u]);
        }
        float m_new = fmaxf(m[h], mx);
        float correction = expf(m[h] - m_new);  // m[h] = -inf at first: 0
        l[h] *= correction;
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[h][j] *= correction;
#pragma unroll
        for (int u = 0; u < DEC_UNROLL; u++) {
          float pk = expf(x[u] - m_new);  // an unseen key: exp(-inf) = 0
          l[h] += pk;
#pragma unroll
          for (int j = 0; j < DPL; j++) acc[h][j] += pk * v[u][j];
        }
        m[h] = m_new;
      }
    }
    if (past) break;  // keys come in token order: the rest are in the future
  }

  // Merge the warps' states (a warp that saw no key has m = -inf and weighs nothing).
#pragma unroll
  for (int h = 0; h < DEC_MAX_GROUP; h++) {
    if (h >= ng) continue;
    if (lane == 0) {
      wm[warp][h] = m[h];
      wl[warp][h] = l[h];
    }
#pragma unroll
    for (int j = 0; j < DPL; j++) wo[warp][h][j * 32 + lane] = acc[h][j];
  }
  __syncthreads();
  if (warp != 0) return;
  for (int h = 0; h < ng; h++) {  // from shared memory: h may vary
    float M = -CUDART_INF_F, L = 0.f, o[DPL];
    for (int w = 0; w < DEC_WARPS; w++) M = fmaxf(M, wm[w][h]);
#pragma unroll
    for (int j = 0; j < DPL; j++) o[j] = 0.f;
    for (int w = 0; w < DEC_WARPS; w++) {
      if (wm[w][h] == -CUDART_INF_F) continue;
      float c = expf(wm[w][h] - M);
      L += wl[w][h] * c;
#pragma unroll
      for (int j = 0; j < DPL; j++) o[j] += wo[w][h][j * 32 + lane] * c;
    }
    if (part_o == nullptr) {
      float* dst = out + (size_t)(token - chunk_start) * q_cols + (size_t)(kv_head * group + g0 + h) * head_dim;
#pragma unroll
      for (int j = 0; j < DPL; j++) dst[dim[j]] = L > 0.f ? o[j] / L : 0.f;
    } else {
      size_t prow = ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * ATT_ROWS + h;
#pragma unroll
      for (int j = 0; j < DPL; j++) part_o[prow * head_dim + dim[j]] = o[j];
      if (lane == 0) {
        part_ml[2 * prow] = M;
        part_ml[2 * prow + 1] = L;
      }
    }
  }
}

#define ATTENTION_DECODE_KERNEL(NAME, T, PAIRS)                                                                     \
  extern "C" __global__ void __launch_bounds__(DEC_WARPS * 32) NAME(                                               \
      float* out, const float* q, int q_cols, int chunk_start, const long long* pages, long long value_offset,      \
      int layer, int kv_heads, int head_dim, int group, const int* items, const int* key_offsets,                  \
      const int* key_blocks, const int* key_positions, const int* query_shift, int block_size, int key_length,     \
      int period, const float* lo_cos, const float* lo_sin, const float* hi_cos, const float* hi_sin,              \
      float rope_factor, int interleaved, float scale, int chunks_per_split, float* part_o, float* part_ml) {      \
    PositionMap map{1, 0, period};                                                                                 \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    attend_decode<T, PAIRS>(out, q, q_cols, chunk_start, pages, value_offset, layer, kv_heads, head_dim, group, items, \
                         key_offsets, key_blocks, key_positions, query_shift, block_size, key_length, map, rope,   \
                         scale, chunks_per_split, part_o, part_ml);                                                \
  }

ATTENTION_DECODE_KERNEL(attention_decode_bf16_d64, __nv_bfloat16, 1)
ATTENTION_DECODE_KERNEL(attention_decode_bf16_d128, __nv_bfloat16, 2)
ATTENTION_DECODE_KERNEL(attention_decode_fp8_d64, fp8, 1)
ATTENTION_DECODE_KERNEL(attention_decode_fp8_d128, fp8, 2)
