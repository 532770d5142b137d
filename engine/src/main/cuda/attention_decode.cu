// Attention for one query token (decode), executing the same plans as attention.cu for bf16 or fp8 pages with
// one position branch (not Self-Extend): a work item is the token's query heads of one KV head (the
// GQA group, up to G), its keys split over gridDim.y blocks as attention.cu splits them, with the same
// partial results, so that attention_combine merges both.
//
// Decode reads every selected key once for a handful of query rows, so it is bound by memory latency
// and by the instructions spent per key: a warp takes a run of DEC_UNROLL consecutive keys of one plan
// block (so one plan lookup and one page lookup serve the run), issues all their loads before using
// any, its lanes reading each key's dimensions together (coalesced), rotating their pairs to the key's
// plan position and summing the products with each query head by a warp reduction; the warp then moves
// the heads' online softmax once for the run and adds the keys' values, read the same way. The block's
// warps take every DEC_WARPS-th run and merge their softmax states at the end. Scores are in log2 units
// (the queries carry log2(e)), so each exponential is one ex2 instruction; partial maxima are written in
// natural units, as attention.cu's, for attention_combine. Index arithmetic is 32-bit: a plan entry has
// fewer than 2^31 keys, and positions are below 2^31. Plans whose block size is not a multiple of
// DEC_UNROLL run on attention.cu.
#include <math_constants.h>
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

#define DEC_WARPS 4
#define DEC_UNROLL 4

template <typename T, int PAIRS, int G>  // rotation pairs per lane: head_dim / 64; largest GQA group
__device__ void attend_decode(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                              long long value_offset, int layer, int kv_heads, int head_dim, int group,
                              const int* items, const int* key_offsets, const int* key_blocks,
                              const int* key_positions, const int* query_shift, int block_size, int key_length,
                              PositionMap map, RopeTables rope, float scale, int chunks_per_split, float* part_o,
                              float* part_ml) {
  constexpr int DPL = 2 * PAIRS;  // dimensions per lane: both halves of each pair
  __shared__ float wm[DEC_WARPS][G], wl[DEC_WARPS][G];
  __shared__ float wo[DEC_WARPS][G][DPL * 32];
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
  float qr[G][DPL];
  const float scale_log2 = scale * 1.4426950408889634f;  // log2(e) / sqrt(d)
  long long qpos = map.neighbour((long long)token + query_shift[e]);
#pragma unroll
  for (int p = 0; p < PAIRS; p++) {
    float c, s;
    rope_cos_sin(rope, half, lane + 32 * p, qpos, &c, &s);
#pragma unroll
    for (int h = 0; h < G; h++) {
      float x0 = 0.f, x1 = 0.f;
      if (h < ng) {
        const float* qh = q + (size_t)(token - chunk_start) * q_cols + (size_t)(kv_head * group + g0 + h) * head_dim;
        x0 = qh[dim[2 * p]];
        x1 = qh[dim[2 * p + 1]];
      }
      qr[h][2 * p] = (x0 * c - x1 * s) * scale_log2;
      qr[h][2 * p + 1] = (x1 * c + x0 * s) * scale_log2;
    }
  }

  float m[G], l[G], acc[G][DPL];
#pragma unroll
  for (int h = 0; h < G; h++) {
    m[h] = -CUDART_INF_F;
    l[h] = 0.f;
#pragma unroll
    for (int j = 0; j < DPL; j++) acc[h][j] = 0.f;
  }

  int from = key_offsets[e], to = key_offsets[e + 1];
  int total = (to - from) * block_size;
  int k0 = blockIdx.y * chunks_per_split * ATT_KEYS;
  int k1 = min(total, k0 + chunks_per_split * ATT_KEYS);
  for (int f = k0 + warp * DEC_UNROLL; f < k1; f += DEC_UNROLL * DEC_WARPS) {
    // The run f .. f + DEC_UNROLL - 1 lies in one plan block (block_size is a multiple of DEC_UNROLL and
    // so is f), hence its tokens are consecutive and in one page (KV_PAGE is a multiple of DEC_UNROLL).
    int i = from + f / block_size, off = f - (i - from) * block_size;
    int t0 = key_blocks[i] * block_size + off, logical0 = key_positions[i] + off;
    float k[DEC_UNROLL][DPL], v[DEC_UNROLL][DPL];
    bool seen[DEC_UNROLL], any = false, past = false;
    KvRun<T> keys = kv_run<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t0, false);
    KvRun<T> values = kv_run<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t0, true);
#pragma unroll
    for (int u = 0; u < DEC_UNROLL; u++) {
      int t = t0 + u;
      bool valid = f + u < k1 && t < key_length;
      seen[u] = valid && t <= token;
      any |= seen[u];
      past |= valid && t > token;
      if (!seen[u]) {
#pragma unroll
        for (int j = 0; j < DPL; j++) v[u][j] = 0.f;  // weighs 0, and 0 * garbage may be NaN
        continue;
      }
      unsigned kpos = (unsigned)map.neighbour(logical0 + u);
      KvRow<T> kr = keys(u), vr = values(u);
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
      for (int h = 0; h < G; h++) {
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
        float correction = exp2_approx(m[h] - m_new);  // m[h] = -inf at first: 0
        l[h] *= correction;
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[h][j] *= correction;
#pragma unroll
        for (int u = 0; u < DEC_UNROLL; u++) {
          float pk = exp2_approx(x[u] - m_new);  // an unseen key: 2^-inf = 0
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
  for (int h = 0; h < G; h++) {
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
      float c = exp2_approx(wm[w][h] - M);
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
        part_ml[2 * prow] = M * 0.6931471805599453f;  // ln 2: natural units
        part_ml[2 * prow + 1] = L;
      }
    }
  }
}

#define ATTENTION_DECODE_KERNEL(NAME, T, PAIRS, G)                                                                   \
  extern "C" __global__ void __launch_bounds__(DEC_WARPS * 32) NAME(                                               \
      float* out, const float* q, int q_cols, int chunk_start, const long long* pages, long long value_offset,      \
      int layer, int kv_heads, int head_dim, int group, const int* items, const int* key_offsets,                  \
      const int* key_blocks, const int* key_positions, const int* query_shift, int block_size, int key_length,     \
      int period, const float* lo_cos, const float* lo_sin, const float* hi_cos, const float* hi_sin,              \
      float rope_factor, int interleaved, float scale, int chunks_per_split, float* part_o, float* part_ml) {      \
    PositionMap map{1, 0, period};                                                                                 \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    attend_decode<T, PAIRS, G>(out, q, q_cols, chunk_start, pages, value_offset, layer, kv_heads, head_dim, group, items, \
                         key_offsets, key_blocks, key_positions, query_shift, block_size, key_length, map, rope,   \
                         scale, chunks_per_split, part_o, part_ml);                                                \
  }

// _g4: GQA groups up to 4 (Llama-3, Mistral), in fewer registers; _g8 up to 8 (Llama-3-70B, Qwen2.5-7B), bf16
// pages of width 128 only, to keep the fatbin small: other plans with larger groups run on attention.cu.
ATTENTION_DECODE_KERNEL(attention_decode_bf16_d64_g4, __nv_bfloat16, 1, 4)
ATTENTION_DECODE_KERNEL(attention_decode_bf16_d128_g4, __nv_bfloat16, 2, 4)
ATTENTION_DECODE_KERNEL(attention_decode_fp8_d64_g4, fp8, 1, 4)
ATTENTION_DECODE_KERNEL(attention_decode_fp8_d128_g4, fp8, 2, 4)
ATTENTION_DECODE_KERNEL(attention_decode_bf16_d128_g8, __nv_bfloat16, 2, 8)
