// Attention that executes an AttentionPlan on tensor cores, for prefill: the work of attention.cu
// (dense, select-and-merge, original / re-indexed / CRD positions; not Self-Extend's two branches)
// done as flash attention (FlashAttention-2's loop) with bf16 mma.sync products and fp32 accumulation.
//
// A block of TC_WARPS warps takes one work item: up to TC_ROWS (query token, query head) rows that
// share a plan entry (tile, KV head), 16 rows a warp. Queries are rotated to their positions once and
// kept in registers as the A operands of m16n8k16 products. Keys are cached before RoPE; rope_keys.cu
// has rotated each entry's keys to the entry's positions into `rotated` (row row_base[e] + f for the
// entry's f-th key), so the block copies keys from there and values from bf16 pages (or, for fp8
// pages, from the rows of `values` that rope_keys.cu scaled to bf16), TC_KEYS at a time, with cp.async
// into two shared buffers: the next step's copy runs while this step computes.
//
// Each warp computes its 16 x TC_KEYS scores S = Q K^T in accumulator registers, updates its online
// softmax there (a row's scores are spread over the four lanes of a quad), and turns them into P in
// place: the accumulator layout of two adjacent 8-key tiles is the A-operand layout of a 16-key step,
// so P never goes through shared memory. Then O += P V, V read transposed by ldmatrix. Scores are
// scaled by log2(e) / sqrt(d) once so that the exponentials are exp2.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with .bf16): lane l holds accumulator rows l/4 and l/4 + 8,
// columns 2(l%4) and 2(l%4) + 1; A registers a0..a3 hold (row l/4, k 2(l%4)..+1), (row l/4 + 8, same
// k), then the same at k + 8; B registers b0, b1 hold (k 2(l%4)..+1, column l/4) and the same at k + 8.
#include <math_constants.h>
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

#define TC_WARPS 8
#define TC_ROWS (16 * TC_WARPS)
#define TC_KEYS 64
#define TC_PAD 8  // bf16 elements after each shared row: rows of 16-byte multiples that shift banks

// 16 bytes from global to shared memory without passing through registers; zeros when !valid.
__device__ __forceinline__ void copy16_async(void* dst, const void* src, bool valid) {
  unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 16 : 0));
}

// Four 8x8 bf16 matrices from shared memory; lane l gives the address of row l % 8 of matrix l / 8.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* row) {
  unsigned s = (unsigned)__cvta_generic_to_shared(row);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* row) {
  unsigned s = (unsigned)__cvta_generic_to_shared(row);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// c += a b for one m16n8k16 tile.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}

template <int D>
__device__ void attend_tc(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                          long long value_offset, int layer, int kv_heads, int group, const int* items,
                          int first_item, const int* key_offsets, const int* key_blocks, const int* key_positions,
                          const int* query_shift, int block_size, int key_length, PositionMap map, RopeTables rope,
                          float scale, const __nv_bfloat16* rotated, const __nv_bfloat16* values,
                          const int* row_base) {
  constexpr int LD = D + TC_PAD, HALF = D / 2, KS = D / 16, NT = TC_KEYS / 8, OT = D / 8;
  constexpr int V8 = D / 8;  // 16-byte pieces of a row
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* qs = (__nv_bfloat16*)smem_raw;
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
  // The warp's 16 query rows as A operands, one per 16 dimensions.
  unsigned qa[KS][4];
#pragma unroll
  for (int k = 0; k < KS; k++)
    ldmatrix_x4(qa[k], qs + (warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + k * 16 + 8 * (lane >> 4));

  float o[OT][4];
#pragma unroll
  for (int n = 0; n < OT; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  // This lane's two rows (of the warp's 16): running max (in log2 units) and sum.
  float m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.f, 0.f};
  int my_q[2] = {qtok[warp * 16 + (lane >> 2)], qtok[warp * 16 + (lane >> 2) + 8]};
  const float scale_log2 = scale * 1.4426950408889634f;

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
    __syncthreads();  // step c-1 is done with buffer (c+1) & 1
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

    // S = Q K^T: K's rows are the B operand as stored ([key][dim] is column-major K^T).
    float s[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
#pragma unroll
      for (int k = 0; k < KS; k++) {
        unsigned b[4];  // b0, b1 of key tile n, then of key tile n + 1
        ldmatrix_x4(b, kb_s + (n * 8 + (lane & 7) + 8 * (lane >> 4)) * LD + k * 16 + 8 * ((lane >> 3) & 1));
        mma_bf16(s[n], qa[k], b[0], b[1]);
        mma_bf16(s[n + 1], qa[k], b[2], b[3]);
      }
    }
    // Online softmax in registers: element i of tile n is row h = i / 2, key n * 8 + 2 (lane % 4) + i % 2.
    float mx[2] = {-CUDART_INF_F, -CUDART_INF_F};
#pragma unroll
    for (int n = 0; n < NT; n++) {
#pragma unroll
      for (int i = 0; i < 4; i++) {
        int h = i >> 1;
        float x = kt[n * 8 + 2 * (lane & 3) + (i & 1)] <= my_q[h] ? s[n][i] * scale_log2 : -CUDART_INF_F;
        s[n][i] = x;
        mx[h] = fmaxf(mx[h], x);
      }
    }
    float alpha[2], sum[2] = {0.f, 0.f};
#pragma unroll
    for (int h = 0; h < 2; h++) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      float m_new = fmaxf(m[h], mx[h]);
      alpha[h] = m_new == -CUDART_INF_F ? 1.f : exp2f(m[h] - m_new);
      m[h] = m_new;
    }
#pragma unroll
    for (int n = 0; n < NT; n++) {
#pragma unroll
      for (int i = 0; i < 4; i++) {
        int h = i >> 1;
        float p = s[n][i] == -CUDART_INF_F ? 0.f : exp2f(s[n][i] - m[h]);
        s[n][i] = p;
        sum[h] += p;
      }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 1);
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 2);
      l[h] = l[h] * alpha[h] + sum[h];
    }
#pragma unroll
    for (int n = 0; n < OT; n++) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }
    // O += P V: key tiles 2k and 2k + 1 of P are the A operand of key step k.
#pragma unroll
    for (int k = 0; k < TC_KEYS / 16; k++) {
      unsigned pa[4] = {pack_bf16(s[2 * k][0], s[2 * k][1]), pack_bf16(s[2 * k][2], s[2 * k][3]),
                        pack_bf16(s[2 * k + 1][0], s[2 * k + 1][1]), pack_bf16(s[2 * k + 1][2], s[2 * k + 1][3])};
#pragma unroll
      for (int n = 0; n < OT; n += 2) {
        unsigned b[4];  // b0, b1 of dimension tile n, then of tile n + 1
        ldmatrix_x4_trans(b, vb_s + (k * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + n * 8 + 8 * (lane >> 4));
        mma_bf16(o[n], pa, b[0], b[1]);
        mma_bf16(o[n + 1], pa, b[2], b[3]);
      }
    }
  }

#pragma unroll
  for (int h = 0; h < 2; h++) {
    int r = warp * 16 + (lane >> 2) + 8 * h;
    if (r >= rows) continue;
    float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
    float* dst = out + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)(kv_head * group + g0 + r % ng) * D;
#pragma unroll
    for (int n = 0; n < OT; n++)
      *reinterpret_cast<float2*>(dst + n * 8 + 2 * (lane & 3)) = make_float2(o[n][2 * h] * inv, o[n][2 * h + 1] * inv);
  }
}

// Items [first_item, first_item + gridDim.x) of the plan's work list. BLOCKS_PER_SM bounds registers so
// that many blocks fit a multiprocessor: two at head width 64, one at 128 (whose O takes 64 registers).
#define ATTENTION_TC_KERNEL(NAME, D, BLOCKS_PER_SM)                                                               \
  extern "C" __global__ void __launch_bounds__(TC_WARPS * 32, BLOCKS_PER_SM) NAME(                                \
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

ATTENTION_TC_KERNEL(attention_tc_bf16_d64, 64, 2)
ATTENTION_TC_KERNEL(attention_tc_bf16_d128, 128, 1)
