// attention_tc.cu's work on Hopper's warpgroup products (wgmma, sm_90a; the host launches these kernels
// on compute capability 9.0 and attention_tc.cu's elsewhere): the same work items of WG_ROWS (query
// token, query head) rows of one plan entry, the same walk over the entry's keys WG_KEYS at a time,
// the same online softmax with the same masks. What changes is who multiplies: two warpgroups take 64
// rows each, and S = Q K^T reads Q and K from shared memory through descriptors (one instruction per
// 16 of the head's dimensions for the warpgroup's 64 x 64 tile, where mma.sync needed a warp's
// ldmatrix and eight products), and O += P V takes P from the registers the scores were in and V from
// shared memory, transposed by the instruction. Queries, keys and values are staged in wgmma.cuh's
// swizzled layout. Measured alone (tools/kernel-bench/attention_tc_bench.cu) against attention_tc.cu.
#include <math_constants.h>
#include <type_traits>
#include "tensor_core.cuh"
#include "wgmma.cuh"

#define WG_ROWS 128  // rows of a work item: as attention_tc.cu's TC_ROWS, so that plans' items serve both
#define WG_KEYS 64
#define WG_THREADS 256  // the launch's block: two warpgroups; the key walk's copy stride assumes it

// Device code for sm_90a alone (the host pass sees the kernels too, for tools/kernel-bench's launches).
#if !defined(__CUDA_ARCH__) || (__CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL))

template <int D>
__device__ void attend_wgmma(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                             long long value_offset, int layer, int kv_heads, int group, const int* items,
                             int first_item, const int* key_offsets, const int* key_blocks, const int* key_positions,
                             const int* query_shift, int block_size, int key_length, PositionMap map, RopeTables rope,
                             float scale, const __nv_bfloat16* rotated, const __nv_bfloat16* values,
                             const int* row_base) {
  constexpr int KS = D / 16, SN = WG_KEYS / 2, ON = D / 2;
  constexpr uint32_t Q_BYTES = WG_ROWS * D * 2, KV_BYTES = WG_KEYS * D * 2;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  // Swizzled atoms need 1,024-byte alignment; the host adds the slack.
  uint32_t raw = (uint32_t)__cvta_generic_to_shared(smem_raw), base = (raw + 1023) & ~1023u;
  unsigned char* qs = smem_raw + (base - raw);
  unsigned char* ks = qs + Q_BYTES;
  unsigned char* vs = ks + 2 * KV_BYTES;
  int* ktok = (int*)(vs + 2 * KV_BYTES);
  int* qtok = ktok + 2 * WG_KEYS;
  int* qpos = qtok + WG_ROWS;

  TcItem it = tc_item(items, first_item, kv_heads);
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  tc_load_queries<WG_ROWS, D>(it, q, q_cols, chunk_start, group, query_shift, map, rope, scale, qtok, qpos, qs,
                              [](int r, int col) { return swizzled(r, col >> 3, WG_ROWS) + 2 * (col & 7); });
  fence_async_shared();
  __syncthreads();

  float o[ON];
#pragma unroll
  for (int i = 0; i < ON; i++) o[i] = 0.f;
  // This lane's two rows (h = 0, 1): 16 * warp + lane / 4 + 8h. Running max (log2 units) and sum.
  float m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.f, 0.f};
  // Rows are valid from the first: a warpgroup whose first row is padding has nothing to compute (its
  // four warps skip the products together, as wgmma needs); a step whose last key is not after a warp's
  // first query needs no mask.
  int warp_first_q = qtok[16 * warp];
  bool idle = qtok[64 * wg] < 0;

  auto keys = tc_keys<D, WG_KEYS, WG_THREADS>(it, pages, value_offset, layer, kv_heads, key_offsets, key_blocks,
                                              block_size, key_length, rotated, values, row_base);
  auto stage = [&](int c) {
    int buf = c & 1;
    keys.stage(c, ks + buf * KV_BYTES, vs + buf * KV_BYTES, ktok + buf * WG_KEYS,
               [](int j, int p) { return swizzled(j, p, WG_KEYS); });
  };
  bool live = keys.live(0);
  if (live) stage(0);

  uint32_t q_at = base + wg * 64 * 128, k_at = base + Q_BYTES, v_at = k_at + 2 * KV_BYTES;
  for (int c = 0; live; c++) {
    int buf = c & 1;
    copies_landed();
    fence_async_shared();
    __syncthreads();  // step c is in shared memory; step c - 1's buffer is free
    live = keys.live(c + 1);
    const int* kt = ktok + buf * WG_KEYS;
    if (live) stage(c + 1);
    if (idle) continue;

    // S = Q K^T: the warpgroup's 64 rows of Q (A) and the step's keys (B), both K-major, D/16 products.
    float s[SN];
    wgmma_pin(o);
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < KS; k++) {
      uint32_t qa = q_at + (k >> 2) * WG_ROWS * 128 + (k & 3) * 32;
      uint32_t kb = k_at + buf * KV_BYTES + (k >> 2) * WG_KEYS * 128 + (k & 3) * 32;
      wgmma_ss_n64(s, wgmma_descriptor(qa, 16, 1024), wgmma_descriptor(kb, 16, 1024), k > 0);
    }
    wgmma_commit();
    wgmma_wait0();
    wgmma_pin(s);
    // Online softmax in registers: s[4n + i] is row h = i / 2, key n * 8 + 2 (lane % 4) + i % 2.
    bool masked = kt[WG_KEYS - 1] > warp_first_q;  // warp-uniform
    if (masked) {
      int my_q[2] = {qtok[16 * warp + (lane >> 2)], qtok[16 * warp + (lane >> 2) + 8]};
#pragma unroll
      for (int i = 0; i < SN; i++)
        if (kt[8 * (i >> 2) + 2 * (lane & 3) + (i & 1)] > my_q[(i >> 1) & 1]) s[i] = -CUDART_INF_F;
    }
    // The running max moves only when a score passes it by more than 8 (log2 units), as in attention_tc.cu.
    float m_new[2];
    bool grow = false;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = -CUDART_INF_F;
#pragma unroll
      for (int n = 0; n < SN / 4; n++) mx = fmaxf(mx, fmaxf(s[4 * n + 2 * h], s[4 * n + 2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      m_new[h] = fmaxf(m[h], mx);
      grow |= m_new[h] > m[h] + 8.f;
    }
    if (__any_sync(0xffffffffu, grow)) {
#pragma unroll
      for (int h = 0; h < 2; h++) {
        float alpha = m_new[h] == -CUDART_INF_F ? 1.f : exp2_approx(m[h] - m_new[h]);
        m[h] = m_new[h];
        l[h] *= alpha;
#pragma unroll
        for (int n = 0; n < ON / 4; n++) {
          o[4 * n + 2 * h] *= alpha;
          o[4 * n + 2 * h + 1] *= alpha;
        }
      }
    }
    // This lane's share of each row's sum; only a masked step can leave a row with m = -inf.
    auto probabilities = [&](auto masked_step) {
#pragma unroll
      for (int i = 0; i < SN; i++) {
        int h = (i >> 1) & 1;
        float p = exp2_approx(s[i] - m[h]);
        if constexpr (decltype(masked_step)::value) p = s[i] == -CUDART_INF_F ? 0.f : p;
        s[i] = p;
        l[h] += p;
      }
    };
    if (masked)
      probabilities(std::true_type{});
    else
      probabilities(std::false_type{});
    // O += P V: P's key tiles 2k and 2k + 1 are the A registers of key step k, all packed before the
    // fence (a register written between two products makes the compiler wait for the first); V MN-major.
    unsigned pa[WG_KEYS / 16][4];
#pragma unroll
    for (int k = 0; k < WG_KEYS / 16; k++) {
      pa[k][0] = pack_bf16(s[8 * k], s[8 * k + 1]);
      pa[k][1] = pack_bf16(s[8 * k + 2], s[8 * k + 3]);
      pa[k][2] = pack_bf16(s[8 * k + 4], s[8 * k + 5]);
      pa[k][3] = pack_bf16(s[8 * k + 6], s[8 * k + 7]);
    }
    wgmma_pin(o);
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < WG_KEYS / 16; k++) {
      uint64_t vb = wgmma_descriptor(v_at + buf * KV_BYTES + k * 16 * 128, WG_KEYS * 128, 1024);
      if constexpr (D == 128)
        wgmma_rs_n128(o, pa[k], vb);
      else
        wgmma_rs_n64(o, pa[k], vb);
    }
    wgmma_commit();
    wgmma_wait0();
    wgmma_pin(o);
  }

#pragma unroll
  for (int h = 0; h < 2; h++) {
    float sum = l[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    int r = 16 * warp + (lane >> 2) + 8 * h;
    if (r >= it.rows) continue;
    float inv = sum > 0.f ? 1.f / sum : 0.f;
    float* dst = out + (size_t)(it.t0 + r / it.ng - chunk_start) * q_cols +
                 (size_t)(it.kv_head * group + it.g0 + r % it.ng) * D;
#pragma unroll
    for (int n = 0; n < ON / 4; n++)
      *reinterpret_cast<float2*>(dst + n * 8 + 2 * (lane & 3)) = make_float2(o[4 * n + 2 * h] * inv, o[4 * n + 2 * h + 1] * inv);
  }
}

TC_ATTENTION_KERNEL(attention_wgmma_bf16_d64, attend_wgmma, 64, WG_THREADS, 2)
TC_ATTENTION_KERNEL(attention_wgmma_bf16_d128, attend_wgmma, 128, WG_THREADS, 2)

#endif
