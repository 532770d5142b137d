// Attention that executes an AttentionPlan on tensor cores, for prefill: the work of attention.cu
// (dense, select-and-merge, original / re-indexed / CRD positions; not Self-Extend's two branches)
// done as flash attention (FlashAttention-2's loop) with bf16 mma.sync products and fp32 accumulation.
//
// A block of TC_WARPS warps takes one work item: up to TC_ROWS (query token, query head) rows that
// share a plan entry (tile, KV head), two 16-row tiles a warp, so that every K and V fragment a warp
// loads from shared memory feeds two products. Queries are rotated to their positions once into shared
// memory, where each step reads them as the A operands of m16n8k16 products: registers hold the two
// tiles' O and S (192 floats a thread at width 128), and two blocks share a multiprocessor, one's
// softmax and barriers overlapping the other's products. Keys are cached before RoPE; rope_keys.cu
// has rotated each entry's keys to the entry's positions into `rotated` (row row_base[e] + f for the
// entry's f-th key), so the block copies keys from there and values from bf16 pages (or, for fp8
// pages, from the rows of `values` that rope_keys.cu scaled to bf16), TC_KEYS at a time, with cp.async
// into two shared buffers: the next step's copy runs while this step computes.
//
// Each warp computes its tiles' 16 x TC_KEYS scores S = Q K^T in accumulator registers, updates its online
// softmax there (a row's scores are spread over the four lanes of a quad), and turns them into P in
// place: the accumulator layout of two adjacent 8-key tiles is the A-operand layout of a 16-key step,
// so P never goes through shared memory. Then O += P V, V read transposed by ldmatrix. Queries carry
// log2(e) / sqrt(d) so that the exponentials are single ex2 instructions.
//
// What the loop spends its instructions on (measured with tools/kernel-bench/attention_tc_bench.cu):
// a step masks only when its last key is after the warp's first query; the running max moves only
// when a score passes it by more than 2^8 (exact: O and the sum use the same max), so O is rarely
// rescaled; a row's sum stays split over its quad until the end; and when plan blocks are whole steps
// a step's keys are consecutive tokens, looked up once.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with .bf16): lane l holds accumulator rows l/4 and l/4 + 8,
// columns 2(l%4) and 2(l%4) + 1; A registers a0..a3 hold (row l/4, k 2(l%4)..+1), (row l/4 + 8, same
// k), then the same at k + 8; B registers b0, b1 hold (k 2(l%4)..+1, column l/4) and the same at k + 8.
#include <math_constants.h>
#include <type_traits>
#include "tensor_core.cuh"

#define TC_WARPS 4
#define TC_MT 2  // 16-row tiles a warp
#define TC_ROWS (16 * TC_MT * TC_WARPS)
#define TC_KEYS 64
#define TC_PAD 8  // bf16 elements after each shared row: rows of 16-byte multiples that shift banks

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

template <int D>
__device__ void attend_tc(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                          long long value_offset, int layer, int kv_heads, int group, const int* items,
                          int first_item, const int* key_offsets, const int* key_blocks, const int* key_positions,
                          const int* query_shift, int block_size, int key_length, PositionMap map, RopeTables rope,
                          float scale, const __nv_bfloat16* rotated, const __nv_bfloat16* values,
                          const int* row_base) {
  constexpr int LD = D + TC_PAD, KS = D / 16, NT = TC_KEYS / 8, OT = D / 8;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* qs = (__nv_bfloat16*)smem_raw;
  __nv_bfloat16* ks = qs + TC_ROWS * LD;
  __nv_bfloat16* vs = ks + 2 * TC_KEYS * LD;
  int* ktok = (int*)(vs + 2 * TC_KEYS * LD);
  int* qtok = ktok + 2 * TC_KEYS;
  int* qpos = qtok + TC_ROWS;
  // Shared rows of LD bf16 (16-byte multiples that shift banks): the byte of a row's element.
  auto padded = [](int r, int col) { return 2 * (r * LD + col); };

  TcItem it = tc_item(items, first_item, kv_heads);
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  tc_load_queries<TC_ROWS, D>(it, q, q_cols, chunk_start, group, query_shift, map, rope, scale, qtok, qpos,
                              smem_raw, padded, tid, blockDim.x, [] { __syncthreads(); });
  __syncthreads();
  constexpr int MT = TC_MT, WR = 16 * MT;  // the warp's rows: WR from row warp * WR
  float o[MT][OT][4];
#pragma unroll
  for (int t = 0; t < MT; t++)
#pragma unroll
    for (int n = 0; n < OT; n++) o[t][n][0] = o[t][n][1] = o[t][n][2] = o[t][n][3] = 0.f;
  // This lane's two rows of each tile: running max (in log2 units) and sum.
  float m[MT][2], l[MT][2];
  int my_q[MT][2];
#pragma unroll
  for (int t = 0; t < MT; t++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      m[t][h] = -CUDART_INF_F;
      l[t][h] = 0.f;
      my_q[t][h] = qtok[warp * WR + t * 16 + (lane >> 2) + 8 * h];
    }
  // Rows are valid from the first: a warp whose first row is padding has nothing to compute, and a step
  // whose last key is not after the warp's first query needs no mask.
  int warp_first_q = qtok[warp * WR];

  auto keys = tc_keys<D, TC_KEYS, TC_WARPS * 32>(it, pages, value_offset, layer, kv_heads, key_offsets, key_blocks,
                                                 block_size, key_length, rotated, values, row_base);
  auto stage = [&](int c) {
    int buf = c & 1;
    keys.stage(c, (unsigned char*)(ks + buf * TC_KEYS * LD), (unsigned char*)(vs + buf * TC_KEYS * LD),
               ktok + buf * TC_KEYS, [&](int j, int p) { return padded(j, 8 * p); });
  };
  bool live = keys.live(0);
  if (live) stage(0);

  for (int c = 0; live; c++) {
    int buf = c & 1;
    copies_landed();
    __syncthreads();  // step c is in shared memory; step c - 1's buffer is free
    live = keys.live(c + 1);
    if (live) stage(c + 1);
    const __nv_bfloat16* kb_s = ks + buf * TC_KEYS * LD;
    const __nv_bfloat16* vb_s = vs + buf * TC_KEYS * LD;
    const int* kt = ktok + buf * TC_KEYS;
    if (warp_first_q < 0) continue;

    // S = Q K^T: K's rows are the B operand as stored ([key][dim] is column-major K^T); Q's rows, the A
    // operands, come from shared memory each step (registers hold O and S for two tiles).
    float s[MT][NT][4];
#pragma unroll
    for (int t = 0; t < MT; t++)
#pragma unroll
      for (int n = 0; n < NT; n++) s[t][n][0] = s[t][n][1] = s[t][n][2] = s[t][n][3] = 0.f;
#pragma unroll
    for (int k = 0; k < KS; k++) {
      unsigned qa[MT][4];
#pragma unroll
      for (int t = 0; t < MT; t++)
        ldmatrix_x4(qa[t], qs + (warp * WR + t * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + k * 16 + 8 * (lane >> 4));
#pragma unroll
      for (int n = 0; n < NT; n += 2) {
        unsigned b[4];  // b0, b1 of key tile n, then of key tile n + 1
        ldmatrix_x4(b, kb_s + (n * 8 + (lane & 7) + 8 * (lane >> 4)) * LD + k * 16 + 8 * ((lane >> 3) & 1));
#pragma unroll
        for (int t = 0; t < MT; t++) {
          mma_bf16(s[t][n], qa[t], b[0], b[1]);
          mma_bf16(s[t][n + 1], qa[t], b[2], b[3]);
        }
      }
    }
    // Online softmax in registers: element i of tile n is row h = i / 2, key n * 8 + 2 (lane % 4) + i % 2.
    bool masked = kt[TC_KEYS - 1] > warp_first_q;  // warp-uniform
    if (masked) {
#pragma unroll
      for (int t = 0; t < MT; t++)
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
          for (int i = 0; i < 4; i++)
            if (kt[n * 8 + 2 * (lane & 3) + (i & 1)] > my_q[t][i >> 1]) s[t][n][i] = -CUDART_INF_F;
    }
    // The running max moves only when a score passes it by more than 8 (log2 units): probabilities up to
    // 2^8 lose nothing in bf16 or fp32, and most steps then skip rescaling O. One warp-wide decision.
    float m_new[MT][2];
    bool grow = false;
#pragma unroll
    for (int t = 0; t < MT; t++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        float mx = -CUDART_INF_F;
#pragma unroll
        for (int n = 0; n < NT; n++) mx = fmaxf(mx, fmaxf(s[t][n][2 * h], s[t][n][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        m_new[t][h] = fmaxf(m[t][h], mx);
        grow |= m_new[t][h] > m[t][h] + 8.f;
      }
    if (__any_sync(0xffffffffu, grow)) {
#pragma unroll
      for (int t = 0; t < MT; t++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          float alpha = m_new[t][h] == -CUDART_INF_F ? 1.f : exp2_approx(m[t][h] - m_new[t][h]);
          m[t][h] = m_new[t][h];
          l[t][h] *= alpha;
#pragma unroll
          for (int n = 0; n < OT; n++) {
            o[t][n][2 * h] *= alpha;
            o[t][n][2 * h + 1] *= alpha;
          }
        }
    }
    // This lane's share of each row's sum: the quad's shares are added once, at the end. Only a masked
    // step can leave a row with no key yet, m = -inf, where 2^(-inf - -inf) would be NaN.
    auto probabilities = [&](auto masked_step) {
#pragma unroll
      for (int t = 0; t < MT; t++)
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
          for (int i = 0; i < 4; i++) {
            int h = i >> 1;
            float p = exp2_approx(s[t][n][i] - m[t][h]);
            if constexpr (decltype(masked_step)::value) p = s[t][n][i] == -CUDART_INF_F ? 0.f : p;
            s[t][n][i] = p;
            l[t][h] += p;
          }
    };
    if (masked)
      probabilities(std::true_type{});
    else
      probabilities(std::false_type{});
    // O += P V: key tiles 2k and 2k + 1 of P are the A operand of key step k.
#pragma unroll
    for (int k = 0; k < TC_KEYS / 16; k++) {
      unsigned pa[MT][4];
#pragma unroll
      for (int t = 0; t < MT; t++) {
        pa[t][0] = pack_bf16(s[t][2 * k][0], s[t][2 * k][1]);
        pa[t][1] = pack_bf16(s[t][2 * k][2], s[t][2 * k][3]);
        pa[t][2] = pack_bf16(s[t][2 * k + 1][0], s[t][2 * k + 1][1]);
        pa[t][3] = pack_bf16(s[t][2 * k + 1][2], s[t][2 * k + 1][3]);
      }
#pragma unroll
      for (int n = 0; n < OT; n += 2) {
        unsigned b[4];  // b0, b1 of dimension tile n, then of tile n + 1
        ldmatrix_x4_trans(b, vb_s + (k * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + n * 8 + 8 * (lane >> 4));
#pragma unroll
        for (int t = 0; t < MT; t++) {
          mma_bf16(o[t][n], pa[t], b[0], b[1]);
          mma_bf16(o[t][n + 1], pa[t], b[2], b[3]);
        }
      }
    }
  }

#pragma unroll
  for (int t = 0; t < MT; t++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float sum = l[t][h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      int r = warp * WR + t * 16 + (lane >> 2) + 8 * h;
      if (r >= it.rows) continue;
      float inv = sum > 0.f ? 1.f / sum : 0.f;
      float* dst = out + (size_t)(it.t0 + r / it.ng - chunk_start) * q_cols +
                   (size_t)(it.kv_head * group + it.g0 + r % it.ng) * D;
#pragma unroll
      for (int n = 0; n < OT; n++)
        *reinterpret_cast<float2*>(dst + n * 8 + 2 * (lane & 3)) =
            make_float2(o[t][n][2 * h] * inv, o[t][n][2 * h + 1] * inv);
    }
}

// Two blocks a multiprocessor: at width 128 ptxas spills a few bytes to fit (measured, it pays). Hopper's
// machine code leaves them out (it runs attention_wgmma.cu's) unless a benchmark asks for both.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ != 900 || defined(SELMA_TC_ON_HOPPER)
TC_ATTENTION_KERNEL(attention_tc_bf16_d64, attend_tc, 64, TC_WARPS * 32, 2)
TC_ATTENTION_KERNEL(attention_tc_bf16_d128, attend_tc, 128, TC_WARPS * 32, 2)
#endif
