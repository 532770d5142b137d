// Attention for one query token (decode), executing the same plans as attention.cu for bf16 or fp8 pages with
// one position branch (not Self-Extend): a work item is the token's query heads of one KV head (the
// GQA group, up to G), its keys split over gridDim.y blocks as attention.cu splits them, with the same
// partial results, so that attention_combine merges both.
//
// Decode reads every selected key once for a handful of query rows: it is bound by the instructions it
// spends per key, so the kernel is laid out to spend few. A warp takes a run of U = 32 / G consecutive
// keys of one plan block (one plan lookup and one page lookup serve the run) and issues all their loads
// before using any, each lane reading its 2 * PAIRS dimensions of a row with two vector loads (coalesced
// over the warp): the dimensions a and b of the RoPE pairs lane * PAIRS + p, so that a key is rotated
// within its lane. The keys' positions are consecutive within a run, so the lane turns the angles of the
// run's first key (from the tables) by one position per key instead of reading the tables for each.
// A lane's partial dot products with the G query heads are U * G = 32 numbers; a transposing reduction
// (31 shuffles instead of 32 reductions of 5) leaves lane (h, u) = (lane / U, lane % U) the whole score
// of head h with key u, so that each exponential of the online softmax is computed once, by its lane,
// and the probabilities reach the lanes' value dimensions by shuffles. The block's warps take every
// DEC_WARPS-th run and merge their softmax states at the end. Scores are in log2 units (the queries
// carry log2(e)), so each exponential is one ex2 instruction; partial maxima are written in natural
// units, as attention.cu's, for attention_combine. Index arithmetic is 32-bit: a plan entry has fewer
// than 2^31 keys, and positions are below 2^31. Plans whose block size is not a multiple of U run on
// attention.cu.
//
// Given k_new and v_new (bf16 pages, a dense plan), the block of split store_split stores the token's own
// key and value in the cache first (kv_store.cuh), then reads them as it reads the others: a decode step
// saves kv_store.cu's launch, and no other block reads that token. (fp8 pages: the host launches kv_store.cu.)
#include <math_constants.h>
#include "attention.cuh"
#include "kv_store.cuh"
#include "rope.cuh"

#define DEC_WARPS 4

// N consecutive elements of a key or value row (N = 1 or 2, aligned to N elements), kept as loaded until
// used: a run's values wait in half the registers that fp32 would take.
template <typename T, int N>
struct Dims;
template <>
struct Dims<__nv_bfloat16, 2> {
  __nv_bfloat162 x;
  __device__ __forceinline__ void load(const __nv_bfloat16* p) { x = *reinterpret_cast<const __nv_bfloat162*>(p); }
  __device__ __forceinline__ void clear() { x = __floats2bfloat162_rn(0.f, 0.f); }
  __device__ __forceinline__ void get(float* out) const {
    float2 f = __bfloat1622float2(x);
    out[0] = f.x;
    out[1] = f.y;
  }
};
template <>
struct Dims<__nv_bfloat16, 1> {
  __nv_bfloat16 x;
  __device__ __forceinline__ void load(const __nv_bfloat16* p) { x = *p; }
  __device__ __forceinline__ void clear() { x = __float2bfloat16(0.f); }
  __device__ __forceinline__ void get(float* out) const { out[0] = __bfloat162float(x); }
};
template <>
struct Dims<fp8, 2> {
  __nv_fp8x2_e4m3 x;
  __device__ __forceinline__ void load(const fp8* p) { x = *reinterpret_cast<const __nv_fp8x2_e4m3*>(p); }
  __device__ __forceinline__ void clear() { x.__x = 0; }
  __device__ __forceinline__ void get(float* out) const {
    float2 f = static_cast<float2>(x);
    out[0] = f.x;
    out[1] = f.y;
  }
};
template <>
struct Dims<fp8, 1> {
  fp8 x;
  __device__ __forceinline__ void load(const fp8* p) { x = *p; }
  __device__ __forceinline__ void clear() { x.__x = 0; }
  __device__ __forceinline__ void get(float* out) const { out[0] = static_cast<float>(x); }
};

// A lane's 2 * PAIRS dimensions of one row: PAIRS at offset A, then PAIRS at offset B.
template <typename T, int PAIRS>
struct LaneRow {
  Dims<T, PAIRS> a, b;
  __device__ __forceinline__ void load(const T* row, int A, int B) {
    a.load(row + A);
    b.load(row + B);
  }
  __device__ __forceinline__ void clear() {
    a.clear();
    b.clear();
  }
  __device__ __forceinline__ void get(float (&out)[2 * PAIRS]) const {
    a.get(&out[0]);
    b.get(&out[PAIRS]);
  }
};

// Rotates a lane's dimensions y (in load order: PAIRS at offset A, then PAIRS at offset B) by the pairs'
// angles. Pair p takes slots (p, PAIRS + p), or (2p, 2p + 1) when interleaved pairs were loaded as one
// run of four.
template <int PAIRS, bool INTERLEAVED>
__device__ __forceinline__ void rotate(float (&y)[2 * PAIRS], const float (&c)[PAIRS], const float (&s)[PAIRS]) {
#pragma unroll
  for (int p = 0; p < PAIRS; p++) {
    constexpr bool adjacent = INTERLEAVED && PAIRS == 2;
    int j0 = adjacent ? 2 * p : p, j1 = adjacent ? 2 * p + 1 : PAIRS + p;
    float x0 = y[j0], x1 = y[j1];
    y[j0] = x0 * c[p] - x1 * s[p];
    y[j1] = x1 * c[p] + x0 * s[p];
  }
}

template <int PAIRS>
__device__ __forceinline__ void rotate(int interleaved, float (&y)[2 * PAIRS], const float (&c)[PAIRS],
                                       const float (&s)[PAIRS]) {
  if (interleaved) {
    rotate<PAIRS, true>(y, c, s);
  } else {
    rotate<PAIRS, false>(y, c, s);
  }
}

// One step of a transposing warp reduction of 32 numbers per lane: of the first 2 * O numbers, a lane keeps
// the half that its lane bit O selects and adds its partner's (lane ^ O) numbers of that half.
template <int O>
__device__ __forceinline__ void transpose_step(float (&x)[32], int lane) {
  bool upper = lane & O;
#pragma unroll
  for (int j = 0; j < O; j++) {
    float keep = upper ? x[j + O] : x[j], send = upper ? x[j] : x[j + O];
    x[j] = keep + __shfl_xor_sync(0xffffffffu, send, O);
  }
}

template <typename T, int PAIRS, int G>  // rotation pairs per lane: head_dim / 64; largest GQA group
__device__ void attend_decode(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                              long long value_offset, int layer, int kv_heads, int head_dim, int group,
                              const int* items, const int* key_offsets, const int* key_blocks,
                              const int* key_positions, const int* query_shift, int block_size, int key_length,
                              PositionMap map, RopeTables rope, float scale, int chunks_per_split, float* part_o,
                              float* part_ml, const float* k_new, const float* v_new, long long key_sum_offset,
                              long long query_sum_offset, int store_split) {
  constexpr int DPL = 2 * PAIRS;  // dimensions per lane
  constexpr int U = 32 / G;       // keys per run: U * G scores, one per lane
  static_assert(U * G == 32, "a run's scores are one per lane");
  constexpr bool FP8 = std::is_same<T, fp8>::value;
  __shared__ float wm[DEC_WARPS][G], wl[DEC_WARPS][G];
  __shared__ float wo[DEC_WARPS][G][DPL * 32];
  const int* item = items + ATT_ITEM_INTS * blockIdx.x;
  int e = item[0], token = item[1], g0 = item[3], ng = item[4];
  int kv_head = e % kv_heads, half = head_dim / 2;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if constexpr (!FP8) {
    if (k_new != nullptr && (int)blockIdx.y == store_split && g0 == 0) {  // block-uniform
      store_token_bf16(pages, value_offset, key_sum_offset, query_sum_offset, layer, kv_heads, head_dim, group, token,
                       q + (size_t)(token - chunk_start) * q_cols, k_new, v_new, kv_head);
      __syncthreads();  // the stores are the block's before its loads
    }
  }
  int my_u = lane % U;  // this lane's score: key my_u of a run, head lane / U

  // This lane's pairs are lane * PAIRS + p; it loads dimensions [A, A + PAIRS) and [B, B + PAIRS).
  int pair0 = lane * PAIRS;
  int A = rope.interleaved ? 2 * pair0 : pair0, B = rope.interleaved ? 2 * pair0 + PAIRS : pair0 + half;
  int dim[DPL];
#pragma unroll
  for (int j = 0; j < PAIRS; j++) {
    dim[j] = A + j;
    dim[PAIRS + j] = B + j;
  }

  // The query heads, rotated to the query's position and scaled; and one position's turn of each pair.
  const float scale_log2 = scale * 1.4426950408889634f;  // log2(e) / sqrt(d)
  float c[PAIRS], s[PAIRS], step_c[PAIRS], step_s[PAIRS];
  long long qpos = map.neighbour((long long)token + query_shift[e]);
#pragma unroll
  for (int p = 0; p < PAIRS; p++) {
    rope_cos_sin(rope, half, pair0 + p, qpos, &c[p], &s[p]);
    step_c[p] = rope.lo_cos[half + pair0 + p];  // position 1: the pair's angle, without the attention factor
    step_s[p] = rope.lo_sin[half + pair0 + p];
  }
  float qr[G][DPL];
#pragma unroll
  for (int h = 0; h < G; h++) {
    const float* qh = q + (size_t)(token - chunk_start) * q_cols + (size_t)(kv_head * group + g0 + h) * head_dim;
#pragma unroll
    for (int j = 0; j < DPL; j++) qr[h][j] = h < ng ? qh[dim[j]] : 0.f;
    rotate<PAIRS>(rope.interleaved, qr[h], c, s);
#pragma unroll
    for (int j = 0; j < DPL; j++) qr[h][j] *= scale_log2;
  }

  // Online softmax state of head lane / U: m is the group's (the same in its U lanes), l this lane's share.
  float m = -CUDART_INF_F, l = 0.f, acc[G][DPL];
#pragma unroll
  for (int h = 0; h < G; h++) {
#pragma unroll
    for (int j = 0; j < DPL; j++) acc[h][j] = 0.f;
  }

  int from = key_offsets[e], to = key_offsets[e + 1];
  int total = (to - from) * block_size;
  int k0 = blockIdx.y * chunks_per_split * ATT_KEYS;
  int k1 = min(total, k0 + chunks_per_split * ATT_KEYS);
  for (int f = k0 + warp * U; f < k1; f += U * DEC_WARPS) {
    // The run f .. f + U - 1 lies in one plan block (block_size is a multiple of U and so is f), hence
    // its tokens are consecutive and in one page (KV_PAGE is a multiple of U).
    int i = from + f / block_size, off = f - (i - from) * block_size;
    int t0 = key_blocks[i] * block_size + off, logical0 = key_positions[i] + off;
    KvRun<T> keys = kv_run<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t0, false);
    KvRun<T> values = kv_run<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t0, true);
    LaneRow<T, PAIRS> kr[U], vr[U];
    bool any = false, past = false;
#pragma unroll
    for (int u = 0; u < U; u++) {
      int t = t0 + u;
      bool valid = f + u < k1 && t < key_length, seen = valid && t <= token;
      any |= seen;
      past |= valid && t > token;
      if (seen) {
        kr[u].load(keys.x + u * head_dim, A, B);
        vr[u].load(values.x + u * head_dim, A, B);
      } else {
        kr[u].clear();
        vr[u].clear();  // weighs 0, and 0 * garbage may be NaN
      }
    }
    int t_mine = t0 + my_u;
    bool my_seen = f + my_u < k1 && t_mine < key_length && t_mine <= token;
    float key_scale = 1.f, value_scale = 1.f;
    if constexpr (FP8) {
      if (my_seen) {
        key_scale = keys.scales[my_u];
        value_scale = values.scales[my_u];
      }
    }
    if (any) {  // warp-uniform
      // Rotate the keys: the run's first position from the tables, each next one a turn further,
      // unless a position cycle wraps inside the run.
      unsigned kpos0 = (unsigned)map.neighbour(logical0);
      bool consecutive = map.period == 0 || kpos0 + (U - 1) < (unsigned)map.period;
      float kc[PAIRS], ks[PAIRS];
#pragma unroll
      for (int p = 0; p < PAIRS; p++) rope_cos_sin(rope, half, pair0 + p, kpos0, &kc[p], &ks[p]);
      float x[U * G];  // partial scores: head h with key u at h * U + u
#pragma unroll
      for (int u = 0; u < U; u++) {
        if (u > 0) {
          if (consecutive) {
#pragma unroll
            for (int p = 0; p < PAIRS; p++) {
              float c0 = kc[p];
              kc[p] = c0 * step_c[p] - ks[p] * step_s[p];
              ks[p] = ks[p] * step_c[p] + c0 * step_s[p];
            }
          } else {
            unsigned kpos = (unsigned)map.neighbour(logical0 + u);
#pragma unroll
            for (int p = 0; p < PAIRS; p++) rope_cos_sin(rope, half, pair0 + p, kpos, &kc[p], &ks[p]);
          }
        }
        float k[DPL];
        kr[u].get(k);
        rotate<PAIRS>(rope.interleaved, k, kc, ks);
#pragma unroll
        for (int h = 0; h < G; h++) {
          float dot = 0.f;
#pragma unroll
          for (int j = 0; j < DPL; j++) dot += qr[h][j] * k[j];
          x[h * U + u] = dot;
        }
      }
      // After five transposing steps, x[0] of lane h * U + u is the score of head h with key u.
      transpose_step<16>(x, lane);
      transpose_step<8>(x, lane);
      transpose_step<4>(x, lane);
      transpose_step<2>(x, lane);
      transpose_step<1>(x, lane);
      float score = my_seen ? x[0] * key_scale : -CUDART_INF_F;
      float mx = score;
#pragma unroll
      for (int o = 1; o < U; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      float m_new = fmaxf(m, mx);                   // finite: every head sees the run's seen keys
      float correction = exp2_approx(m - m_new);    // m = -inf at first: 0
      float pk = exp2_approx(score - m_new);        // an unseen key: 2^-inf = 0
      l = l * correction + pk;
      m = m_new;
      pk *= value_scale;
#pragma unroll
      for (int h = 0; h < G; h++) {
        float ch = __shfl_sync(0xffffffffu, correction, h * U);
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[h][j] *= ch;
      }
#pragma unroll
      for (int u = 0; u < U; u++) {
        float v[DPL];
        vr[u].get(v);
#pragma unroll
        for (int h = 0; h < G; h++) {
          float p = __shfl_sync(0xffffffffu, pk, h * U + u);
#pragma unroll
          for (int j = 0; j < DPL; j++) acc[h][j] += p * v[j];
        }
      }
    }
    if (past) break;  // keys come in token order: the rest are in the future
  }

  // Merge the warps' states (a warp that saw no key has m = -inf and weighs nothing).
#pragma unroll
  for (int o = 1; o < U; o <<= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
  if (my_u == 0 && lane / U < ng) {
    wm[warp][lane / U] = m;
    wl[warp][lane / U] = l;
  }
#pragma unroll
  for (int h = 0; h < G; h++) {
    if (h >= ng) continue;  // not break: constant indices keep the arrays in registers
#pragma unroll
    for (int j = 0; j < DPL; j++) wo[warp][h][j * 32 + lane] = acc[h][j];
  }
  __syncthreads();
  for (int h = warp; h < ng; h += DEC_WARPS) {  // from shared memory: h may vary
    float M = -CUDART_INF_F, L = 0.f, o[DPL];
    for (int w = 0; w < DEC_WARPS; w++) M = fmaxf(M, wm[w][h]);
#pragma unroll
    for (int j = 0; j < DPL; j++) o[j] = 0.f;
    for (int w = 0; w < DEC_WARPS; w++) {
      if (wm[w][h] == -CUDART_INF_F) continue;
      float cw = exp2_approx(wm[w][h] - M);
      L += wl[w][h] * cw;
#pragma unroll
      for (int j = 0; j < DPL; j++) o[j] += wo[w][h][j * 32 + lane] * cw;
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
        part_ml[2 * prow] = M * 0.6931471805599453f;  // ln 2: natural units, as attention_combine takes them
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
      float rope_factor, int interleaved, float scale, int chunks_per_split, float* part_o, float* part_ml,        \
      const float* k_new, const float* v_new, long long key_sum_offset, long long query_sum_offset,              \
      int store_split) {                                                                                           \
    PositionMap map{1, 0, period};                                                                                 \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    attend_decode<T, PAIRS, G>(out, q, q_cols, chunk_start, pages, value_offset, layer, kv_heads, head_dim, group, items, \
                         key_offsets, key_blocks, key_positions, query_shift, block_size, key_length, map, rope,   \
                         scale, chunks_per_split, part_o, part_ml, k_new, v_new, key_sum_offset,                  \
                         query_sum_offset, store_split);                                                           \
  }

// _g4: GQA groups up to 4 (Llama-3, Mistral), in fewer registers; _g8 up to 8 (Llama-3-70B, Qwen2.5-7B), bf16
// pages of width 128 only, to keep the fatbin small: other plans with larger groups run on attention.cu.
ATTENTION_DECODE_KERNEL(attention_decode_bf16_d64_g4, __nv_bfloat16, 1, 4)
ATTENTION_DECODE_KERNEL(attention_decode_bf16_d128_g4, __nv_bfloat16, 2, 4)
ATTENTION_DECODE_KERNEL(attention_decode_fp8_d64_g4, fp8, 1, 4)
ATTENTION_DECODE_KERNEL(attention_decode_fp8_d128_g4, fp8, 2, 4)
ATTENTION_DECODE_KERNEL(attention_decode_bf16_d128_g8, __nv_bfloat16, 2, 8)
