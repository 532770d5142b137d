// Prefill attention on Hopper's warpgroup products (wgmma, sm_90a; the host launches these kernels on
// compute capability 9.0 and attention_tc.cu's elsewhere), built as FlashAttention-3 is: warp-specialised,
// the copy engine bringing a step's keys and values while the tensor cores work, each step's softmax
// overlapped with a product.
//
// A block takes one of attention_tc.cu's work items (tensor_core.cuh: up to WG_ROWS (query token, query
// head) rows of one plan entry) and walks the entry's keys KEY_TILE at a time, with the same online
// softmax and masks. Its first warpgroup produces: one warp looks up each step's key tokens (for the
// masks) and has the step's key tile and value tile bulk-copied into a ring of WG_STAGES shared buffers
// (rope_keys.cu wrote them as swizzle.cuh's key tiles), each buffer handed back by the consumers as soon
// as the product that reads it is done. The other two warpgroups consume, 64 rows each: S = Q K^T reads
// Q and K from shared memory; while it runs they wait for the previous step's values and queue O += P V
// behind it (P from the registers the previous scores were in, V transposed by the instruction), then
// compute this step's probabilities while that product runs. The producer gives registers up to the
// consumers (setmaxnreg), whose scores, probabilities and output take ~160 a thread.
#include <math_constants.h>
#include <type_traits>
#include "mbarrier.cuh"
#include "tensor_core.cuh"
#include "wgmma.cuh"

#define WG_ROWS 128     // rows of a work item: as attention_tc.cu's TC_ROWS, so that plans' items serve both
#define WG_STAGES 2     // key and value buffers
#define WG_RING 4       // key-token slots: a step's tokens are read until the step after next has begun
#define WG_THREADS 384  // a producer warpgroup, two consumer warpgroups
#define WG_PRODUCER_REGISTERS 56
#define WG_CONSUMER_REGISTERS 224  // 128 x 56 + 256 x 224 of the multiprocessor's 65,536

// Device code for sm_90a alone (the host pass sees the kernels too, for tools/kernel-bench's launches).
#if !defined(__CUDA_ARCH__) || (__CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL))

__device__ __forceinline__ void consumers_sync() { asm volatile("bar.sync 1, 256;\n" ::: "memory"); }

template <int D>
__device__ void attend_wgmma(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                             long long value_offset, int layer, int kv_heads, int group, const int* items,
                             int first_item, const int* key_offsets, const int* key_blocks, const int* key_positions,
                             const int* query_shift, int block_size, int key_length, PositionMap map, RopeTables rope,
                             float scale, const __nv_bfloat16* rotated, const __nv_bfloat16* values,
                             const int* row_base) {
  constexpr int KS = D / 16, PS = KEY_TILE / 16, SN = KEY_TILE / 2, ON = D / 2;
  constexpr uint32_t Q_BYTES = WG_ROWS * D * 2, KV_BYTES = KEY_TILE * D * 2;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  // Swizzled atoms need 1,024-byte alignment; the host adds the slack.
  uint32_t raw = shared_address(smem_raw), base = (raw + 1023) & ~1023u;
  unsigned char* qs = smem_raw + (base - raw);
  unsigned char* ks = qs + Q_BYTES;  // stage s at ks + s * KV_BYTES
  unsigned char* vs = ks + WG_STAGES * KV_BYTES;
  uint64_t* full_k = (uint64_t*)(vs + WG_STAGES * KV_BYTES);  // a stage's keys (values) have landed
  uint64_t* full_v = full_k + WG_STAGES;
  uint64_t* empty_k = full_v + WG_STAGES;  // the consumers are done with a stage's keys (values)
  uint64_t* empty_v = empty_k + WG_STAGES;
  int* ring = (int*)(empty_v + WG_STAGES);  // [WG_RING][KEY_TILE + 1]: a step's key tokens, then whether a step follows
  int* qtok = ring + WG_RING * (KEY_TILE + 1);
  int* qpos = qtok + WG_ROWS;

  TcItem it = tc_item(items, first_item, kv_heads);
  auto keys = tc_keys<D, KEY_TILE, 32>(it, pages, value_offset, layer, kv_heads, key_offsets, key_blocks, block_size,
                                       key_length, rotated, values, row_base);
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  if (tid == 0) {
    for (int s = 0; s < WG_STAGES; s++) {
      mbarrier_init(full_k + s, 1);
      mbarrier_init(full_v + s, 1);
      mbarrier_init(empty_k + s, 8);  // lane 0 of each consumer warp
      mbarrier_init(empty_v + s, 8);
    }
    mbarrier_init_fence();
  }
  bool live = keys.live(0);
  __syncthreads();

  if (warp < 4) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(WG_PRODUCER_REGISTERS));
    if (warp != 0) return;
    for (int c = 0; live; c++) {
      int s = c % WG_STAGES, f0 = c * KEY_TILE;
      uint32_t parity = ((c / WG_STAGES) & 1) ^ 1;
      // Slot c % WG_RING last held step c - WG_RING's tokens, which the consumers were done with before
      // they handed back step c - 3's values (this warp waited for that in the step before).
      int* slot = ring + (c % WG_RING) * (KEY_TILE + 1);
      for (int j = lane; j < KEY_TILE; j += 32) slot[j] = f0 + j < keys.total ? keys.token(f0 + j) : INT_MAX;
      live = keys.live(c + 1);
      if (lane == 0) slot[KEY_TILE] = live;
      __syncwarp();
      if (lane == 0) {
        mbarrier_wait(empty_k + s, parity);
        mbarrier_arrive_expect(full_k + s, KV_BYTES);
        bulk_copy(ks + s * KV_BYTES, keys.krot + (size_t)f0 * D, KV_BYTES, full_k + s);
        mbarrier_wait(empty_v + s, parity);
        mbarrier_arrive_expect(full_v + s, KV_BYTES);
        bulk_copy(vs + s * KV_BYTES, keys.vrows + (size_t)f0 * D, KV_BYTES, full_v + s);
      }
      __syncwarp();
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(WG_CONSUMER_REGISTERS));
  int cw = warp - 4, wg = cw >> 2;  // consumer warp 0..7: rows 16 cw .. 16 cw + 15 of the item
  tc_load_queries<WG_ROWS, D>(it, q, q_cols, chunk_start, group, query_shift, map, rope, scale, qtok, qpos, qs,
                              [](int r, int col) { return swizzled(r, col >> 3, WG_ROWS) + 2 * (col & 7); }, tid - 128,
                              256, consumers_sync);
  fence_async_shared();
  consumers_sync();

  float o[ON];
#pragma unroll
  for (int i = 0; i < ON; i++) o[i] = 0.f;
  // This lane's two rows (h = 0, 1): 16 cw + lane / 4 + 8h. Running max (log2 units) and sum.
  float m[2] = {-CUDART_INF_F, -CUDART_INF_F}, l[2] = {0.f, 0.f};
  // A step whose last key is not after a warp's first query needs no mask. (A warpgroup of padding rows
  // computes too: skipping its products would put them on a path the compiler cannot prove uniform, and
  // it then serializes every product.)
  int warp_first_q = qtok[16 * cw];
  int my_q[2] = {qtok[16 * cw + (lane >> 2)], qtok[16 * cw + (lane >> 2) + 8]};
  uint32_t q_at = base + wg * 64 * 128, k_at = base + Q_BYTES, v_at = k_at + WG_STAGES * KV_BYTES;

  float sc[SN];        // a step's scores, then its probabilities: s[4n + i] is row h = i / 2, key 8n + 2 (lane % 4) + i % 2
  unsigned pa[PS][4];  // the probabilities as the A registers of O += P V, key step k from tiles 2k and 2k + 1
  auto scores = [&](int s) {
#pragma unroll
    for (int k = 0; k < KS; k++) {
      uint32_t qa = q_at + (k >> 2) * WG_ROWS * 128 + (k & 3) * 32;
      uint32_t kb = k_at + s * KV_BYTES + (k >> 2) * KEY_TILE * 128 + (k & 3) * 32;
      wgmma_ss_n128(sc, wgmma_descriptor(qa, 16, 1024), wgmma_descriptor(kb, 16, 1024), k > 0);
    }
    wgmma_commit();
  };
  auto values_product = [&](int s) {
#pragma unroll
    for (int k = 0; k < PS; k++) {
      uint64_t vb = wgmma_descriptor(v_at + s * KV_BYTES + k * 16 * 128, KEY_TILE * 128, 1024);
      if constexpr (D == 128)
        wgmma_rs_n128(o, pa[k], vb);
      else
        wgmma_rs_n64(o, pa[k], vb);
    }
    wgmma_commit();
  };
  // The step's probabilities in sc, relative to the running max, and their sums; the max moves only when
  // a score passes it by more than 8 (log2 units), and then alpha says how O must shrink (1: it need not).
  float alpha[2];
  auto probabilities = [&](const int* kt) {
    bool masked = kt[KEY_TILE - 1] > warp_first_q;  // warp-uniform
    if (masked) {
#pragma unroll
      for (int i = 0; i < SN; i++)
        if (kt[8 * (i >> 2) + 2 * (lane & 3) + (i & 1)] > my_q[(i >> 1) & 1]) sc[i] = -CUDART_INF_F;
    }
    float m_new[2];
    bool grow = false;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = -CUDART_INF_F;
#pragma unroll
      for (int n = 0; n < SN / 4; n++) mx = fmaxf(mx, fmaxf(sc[4 * n + 2 * h], sc[4 * n + 2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      m_new[h] = fmaxf(m[h], mx);
      grow |= m_new[h] > m[h] + 8.f;
    }
    alpha[0] = alpha[1] = 1.f;
    if (__any_sync(0xffffffffu, grow)) {
#pragma unroll
      for (int h = 0; h < 2; h++) {
        alpha[h] = m_new[h] == -CUDART_INF_F ? 1.f : exp2_approx(m[h] - m_new[h]);
        m[h] = m_new[h];
        l[h] *= alpha[h];
      }
    }
    // Only a masked step can leave a row with m = -inf.
    auto exponentials = [&](auto masked_step) {
#pragma unroll
      for (int i = 0; i < SN; i++) {
        int h = (i >> 1) & 1;
        float p = exp2_approx(sc[i] - m[h]);
        if constexpr (decltype(masked_step)::value) p = sc[i] == -CUDART_INF_F ? 0.f : p;
        sc[i] = p;
        l[h] += p;
      }
    };
    if (masked)
      exponentials(std::true_type{});
    else
      exponentials(std::false_type{});
  };
  auto rescale_and_pack = [&] {
    if (alpha[0] != 1.f || alpha[1] != 1.f) {
#pragma unroll
      for (int n = 0; n < ON / 4; n++) {
        o[4 * n] *= alpha[0];
        o[4 * n + 1] *= alpha[0];
        o[4 * n + 2] *= alpha[1];
        o[4 * n + 3] *= alpha[1];
      }
    }
#pragma unroll
    for (int k = 0; k < PS; k++) {
      pa[k][0] = pack_bf16(sc[8 * k], sc[8 * k + 1]);
      pa[k][1] = pack_bf16(sc[8 * k + 2], sc[8 * k + 3]);
      pa[k][2] = pack_bf16(sc[8 * k + 4], sc[8 * k + 5]);
      pa[k][3] = pack_bf16(sc[8 * k + 6], sc[8 * k + 7]);
    }
  };

  int c = 0;
  if (live) {
    mbarrier_wait(full_k, 0);
    wgmma_fence();
    scores(0);
    wgmma_wait0();
    wgmma_pin(sc);
    if (lane == 0) mbarrier_arrive(empty_k);
    const int* kt = ring;
    live = kt[KEY_TILE];
    probabilities(kt);
    rescale_and_pack();
    for (c = 1; live; c++) {
      int s = c % WG_STAGES, p = (c - 1) % WG_STAGES;
      mbarrier_wait(full_k + s, (c / WG_STAGES) & 1);
      wgmma_pin(o);
      wgmma_fence();
      scores(s);
      mbarrier_wait(full_v + p, ((c - 1) / WG_STAGES) & 1);
      values_product(p);
      wgmma_wait1();  // the scores are in; the values product runs on
      wgmma_pin(sc);
      if (lane == 0) mbarrier_arrive(empty_k + s);
      kt = ring + (c % WG_RING) * (KEY_TILE + 1);
      live = kt[KEY_TILE];
      probabilities(kt);
      wgmma_wait0();
      wgmma_pin(o);
      if (lane == 0) mbarrier_arrive(empty_v + p);
      rescale_and_pack();
    }
    // The last step's values.
    int p = (c - 1) % WG_STAGES;
    mbarrier_wait(full_v + p, ((c - 1) / WG_STAGES) & 1);
    wgmma_pin(o);
    wgmma_fence();
    values_product(p);
    wgmma_wait0();
    wgmma_pin(o);
  }

#pragma unroll
  for (int h = 0; h < 2; h++) {
    float sum = l[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    int r = 16 * cw + (lane >> 2) + 8 * h;
    if (r >= it.rows) continue;
    float inv = sum > 0.f ? 1.f / sum : 0.f;
    float* dst = out + (size_t)(it.t0 + r / it.ng - chunk_start) * q_cols +
                 (size_t)(it.kv_head * group + it.g0 + r % it.ng) * D;
#pragma unroll
    for (int n = 0; n < ON / 4; n++)
      *reinterpret_cast<float2*>(dst + n * 8 + 2 * (lane & 3)) = make_float2(o[4 * n + 2 * h] * inv, o[4 * n + 2 * h + 1] * inv);
  }
}

TC_ATTENTION_KERNEL(attention_wgmma_bf16_d64, attend_wgmma, 64, WG_THREADS, 1)
TC_ATTENTION_KERNEL(attention_wgmma_bf16_d128, attend_wgmma, 128, WG_THREADS, 1)

#endif
