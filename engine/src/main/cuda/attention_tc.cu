// Attention that executes an AttentionPlan on tensor cores, for prefill: the work of attention.cu
// (dense, select-and-merge, original / re-indexed / CRD positions; not Self-Extend's two branches)
// done as flash attention with bf16 WMMA products and fp32 accumulation.
//
// A block of TC_WARPS warps takes one work item: up to TC_ROWS (query token, query head) rows that
// share a plan entry (tile, KV head), 16 rows a warp. Queries are rotated to their positions once and
// kept as bf16 fragments. Keys are cached before RoPE; rope_keys.cu has rotated each entry's keys to
// the entry's positions into `rotated` (row row_base[e] + f for the entry's f-th key), so the block
// copies keys from there and values from bf16 pages (or, for fp8 pages, from the rows of `values` that
// rope_keys.cu scaled to bf16), TC_KEYS at a time, with cp.async into two shared
// buffers: the next step's copy runs while this step computes. Each warp computes its 16 x TC_KEYS
// scores (S = Q K^T), updates its online softmax in registers, writes P as bf16 over its own rows of
// the queries' shared buffer (read only before the first step) and accumulates O += P V.
//
// The softmax and the rescaling of O read accumulator fragments element by element, which relies on
// the layout of a 16x16 fp32 accumulator on sm_80 and later (two m16n8 mma tiles: element i of lane l
// is row l/4 + 8*((i/2)%2), column 2*(l%4) + i%2 + 8*(i/4)); the GPU tests compare the result with the
// general kernel's, so a GPU where this does not hold fails them.
#include <mma.h>
#include <math_constants.h>
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

using namespace nvcuda;

#define TC_WARPS 8
#define TC_ROWS (16 * TC_WARPS)
#define TC_KEYS 64
#define TC_PAD 8  // bf16 elements after each shared row: rows of 16-byte multiples that shift banks

__device__ __forceinline__ int acc_row(int lane, int i) { return (lane >> 2) + 8 * ((i >> 1) & 1); }
__device__ __forceinline__ int acc_col(int lane, int i) { return ((lane & 3) << 1) + (i & 1) + 8 * (i >> 2); }

// 16 bytes from global to shared memory without passing through registers; zeros when !valid.
__device__ __forceinline__ void copy16_async(void* dst, const void* src, bool valid) {
  unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 16 : 0));
}

template <int D>
__device__ void attend_tc(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                          long long value_offset, int layer, int kv_heads, int group, const int* items,
                          int first_item, const int* key_offsets, const int* key_blocks, const int* key_positions,
                          const int* query_shift, int block_size, int key_length, PositionMap map, RopeTables rope,
                          float scale, const __nv_bfloat16* rotated, const __nv_bfloat16* values,
                          const int* row_base) {
  constexpr int LD = D + TC_PAD, PLD = TC_KEYS + TC_PAD, HALF = D / 2, KF = D / 16, NF = TC_KEYS / 16;
  constexpr int V8 = D / 8;  // 16-byte pieces of a row
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* qs = (__nv_bfloat16*)smem_raw;
  __nv_bfloat16* ps = qs;  // probabilities, once the queries are in registers
  __nv_bfloat16* ks = qs + TC_ROWS * LD;
  __nv_bfloat16* vs = ks + 2 * TC_KEYS * LD;
  int* ktok = (int*)(vs + 2 * TC_KEYS * LD);
  int* qtok = ktok + 2 * TC_KEYS;
  int* qpos = qtok + TC_ROWS;

  const int* item = items + ATT_ITEM_INTS * (first_item + blockIdx.x);
  int e = item[0], t0 = item[1], nt = item[2], g0 = item[3], ng = item[4];
  int kv_head = e % kv_heads, rows = nt * ng;
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  if (tid < TC_ROWS) {
    bool valid = tid < rows;
    qtok[tid] = valid ? t0 + tid / ng : -1;  // -1: a padding row sees no key
    qpos[tid] = valid ? t0 + tid / ng + query_shift[e] : 0;
  }
  __syncthreads();
  for (int idx = tid; idx < TC_ROWS * HALF; idx += blockDim.x) {
    int r = idx / HALF, i = idx % HALF;
    int a = rope_first(rope, HALF, i), b = rope_second(rope, HALF, i);
    float x0 = 0.f, x1 = 0.f;
    if (r < rows) {
      const float* qr = q + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)(kv_head * group + g0 + r % ng) * D;
      float c, s;
      rope_cos_sin(rope, HALF, i, map.neighbour(qpos[r]), &c, &s);
      x0 = qr[a] * c - qr[b] * s;
      x1 = qr[b] * c + qr[a] * s;
    }
    qs[r * LD + a] = __float2bfloat16_rn(x0);
    qs[r * LD + b] = __float2bfloat16_rn(x1);
  }
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> qf[KF];
#pragma unroll
  for (int k = 0; k < KF; k++) wmma::load_matrix_sync(qf[k], qs + warp * 16 * LD + k * 16, LD);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> of[KF];
#pragma unroll
  for (int f = 0; f < KF; f++) wmma::fill_fragment(of[f], 0.f);
  // This lane's two rows (of the warp's 16): running max and sum.
  float m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.f, 0.f};
  int my_q[2] = {qtok[warp * 16 + (lane >> 2)], qtok[warp * 16 + (lane >> 2) + 8]};

  int from = key_offsets[e], to = key_offsets[e + 1];
  long long total = (long long)(to - from) * block_size;
  int last_query = t0 + nt - 1;
  const __nv_bfloat16* krot = rotated + (size_t)row_base[e] * D;
  const __nv_bfloat16* vrows = values == nullptr ? nullptr : values + (size_t)row_base[e] * D;
  // Whether step c has a key the item's queries may see (keys come in token order).
  auto live = [&](int c) {
    long long f0 = (long long)c * TC_KEYS;
    return f0 < total && key_blocks[from + f0 / block_size] * block_size + (int)(f0 % block_size) <= last_query;
  };
  // Starts copying step c's keys and values into buffer c & 1 and records their tokens.
  auto stage = [&](int c) {
    int buf = c & 1;
    for (int idx = tid; idx < TC_KEYS * V8; idx += blockDim.x) {
      int j = idx / V8, v8 = idx % V8, logical;
      long long f = (long long)c * TC_KEYS + j;
      int token = plan_key(key_blocks, key_positions, from, total, block_size, key_length, f, &logical);
      bool valid = token != INT_MAX;
      if (v8 == 0) ktok[buf * TC_KEYS + j] = token;
      const __nv_bfloat16* k = valid ? krot + f * D + v8 * 8 : krot;
      const __nv_bfloat16* v = !valid             ? krot
                               : vrows != nullptr ? vrows + f * D + v8 * 8
                                                  : kv_row<__nv_bfloat16>(pages, value_offset, layer, kv_heads, D,
                                                                          kv_head, token) + v8 * 8;
      copy16_async(ks + (buf * TC_KEYS + j) * LD + v8 * 8, k, valid);
      copy16_async(vs + (buf * TC_KEYS + j) * LD + v8 * 8, v, valid);
    }
    asm volatile("cp.async.commit_group;\n" ::);
  };
  if (live(0)) stage(0);

  for (int c = 0; live(c); c++) {
    int buf = c & 1;
    __syncthreads();  // step c-1 is done with buffer (c+1) & 1, and every warp with the queries' buffer
    if (live(c + 1)) {
      stage(c + 1);
      asm volatile("cp.async.wait_group 1;\n" ::);
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::);
    }
    __syncthreads();  // step c's keys, values and tokens are in shared memory
    const __nv_bfloat16* kb_s = ks + buf * TC_KEYS * LD;
    const __nv_bfloat16* vb_s = vs + buf * TC_KEYS * LD;
    const int* kt = ktok + buf * TC_KEYS;

    // S = Q K^T for the warp's 16 rows and the step's keys.
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf[NF];
#pragma unroll
    for (int n = 0; n < NF; n++) {
      wmma::fill_fragment(sf[n], 0.f);
#pragma unroll
      for (int k = 0; k < KF; k++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> kb;
        wmma::load_matrix_sync(kb, kb_s + n * 16 * LD + k * 16, LD);
        wmma::mma_sync(sf[n], qf[k], kb, sf[n]);
      }
    }
    // Online softmax on the fragments: the four lanes l/4 share a row.
    float mx[2] = {-CUDART_INF_F, -CUDART_INF_F};
#pragma unroll
    for (int n = 0; n < NF; n++) {
#pragma unroll
      for (int i = 0; i < sf[n].num_elements; i++) {
        int h = (i >> 1) & 1;
        float x = kt[n * 16 + acc_col(lane, i)] <= my_q[h] ? sf[n].x[i] * scale : -CUDART_INF_F;
        sf[n].x[i] = x;
        mx[h] = fmaxf(mx[h], x);
      }
    }
    float alpha[2], sum[2] = {0.f, 0.f};
#pragma unroll
    for (int h = 0; h < 2; h++) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      float m_new = fmaxf(m[h], mx[h]);
      alpha[h] = m_new == -CUDART_INF_F ? 1.f : expf(m[h] - m_new);
      m[h] = m_new;
    }
#pragma unroll
    for (int n = 0; n < NF; n++) {
      // Elements i and i + 1 are neighbours in one row: store them as one pair.
#pragma unroll
      for (int i = 0; i < sf[n].num_elements; i += 2) {
        int h = (i >> 1) & 1;
        float p0 = sf[n].x[i] == -CUDART_INF_F ? 0.f : expf(sf[n].x[i] - m[h]);
        float p1 = sf[n].x[i + 1] == -CUDART_INF_F ? 0.f : expf(sf[n].x[i + 1] - m[h]);
        sum[h] += p0 + p1;
        *reinterpret_cast<__nv_bfloat162*>(ps + (warp * 16 + acc_row(lane, i)) * PLD + n * 16 + acc_col(lane, i)) =
            __floats2bfloat162_rn(p0, p1);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 1);
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 2);
      l[h] = l[h] * alpha[h] + sum[h];
    }
#pragma unroll
    for (int f = 0; f < KF; f++) {
#pragma unroll
      for (int i = 0; i < of[f].num_elements; i++) of[f].x[i] *= alpha[(i >> 1) & 1];
    }
    __syncwarp();  // the warp's probabilities are in shared memory
    // O += P V
#pragma unroll
    for (int k = 0; k < NF; k++) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> pf;
      wmma::load_matrix_sync(pf, ps + warp * 16 * PLD + k * 16, PLD);
#pragma unroll
      for (int f = 0; f < KF; f++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> vf;
        wmma::load_matrix_sync(vf, vb_s + k * 16 * LD + f * 16, LD);
        wmma::mma_sync(of[f], pf, vf, of[f]);
      }
    }
  }

#pragma unroll
  for (int f = 0; f < KF; f++) {
#pragma unroll
    for (int i = 0; i < of[f].num_elements; i++) {
      int r = warp * 16 + acc_row(lane, i), h = (i >> 1) & 1;
      if (r >= rows) continue;
      float* o = out + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)(kv_head * group + g0 + r % ng) * D;
      o[f * 16 + acc_col(lane, i)] = l[h] > 0.f ? of[f].x[i] / l[h] : 0.f;
    }
  }
}

// Items [first_item, first_item + gridDim.x) of the plan's work list. Two blocks a multiprocessor (128
// registers a thread, a few spilled) ran 2-3 % faster on an H100 than one block with 177 registers.
#define ATTENTION_TC_KERNEL(NAME, D)                                                                               \
  extern "C" __global__ void __launch_bounds__(TC_WARPS * 32, 2) NAME(                                                \
      float* out, const float* q, int q_cols, int chunk_start, const long long* pages, long long value_offset,      \
      int layer, int kv_heads, int group, const int* items, int first_item, const int* key_offsets,                \
      const int* key_blocks, const int* key_positions, const int* query_shift, int block_size, int key_length,     \
      int period, const float* lo_cos, const float* lo_sin, const float* hi_cos, const float* hi_sin,              \
      float rope_factor, int interleaved, float scale, const __nv_bfloat16* rotated, const __nv_bfloat16* values, \
      const int* row_base) {                                                                                       \
    PositionMap map{1, 0, period};                                                                                 \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    attend_tc<D>(out, q, q_cols, chunk_start, pages, value_offset, layer, kv_heads, group, items, first_item,      \
                 key_offsets, key_blocks, key_positions, query_shift, block_size, key_length, map, rope, scale,    \
                 rotated, values, row_base);                                                                       \
  }

ATTENTION_TC_KERNEL(attention_tc_bf16_d64, 64)
ATTENTION_TC_KERNEL(attention_tc_bf16_d128, 128)
