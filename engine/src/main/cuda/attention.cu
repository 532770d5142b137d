// Attention that executes an AttentionPlan: dense, select-and-merge and every position scheme are the
// same kernel walking other key-block lists with other positions.
//
// A block takes one work item: up to ATT_ROWS (query token, query head) rows that share a plan entry
// (tile, KV head), so the query heads of a KV head (GQA) and the tokens of a tile share each key and
// value load and each key's rotation. It walks the entry's key blocks ATT_KEYS keys at a time: loads
// them from the paged cache (ATT_KEY_THREADS threads a key), rotates them to their positions (both
// Self-Extend branches when there are two), and each warp keeps an online softmax (running max, sum
// and output) for its rows, one key per lane; a lane reads its key's dimensions once for all the
// warp's rows. Under Self-Extend a (query, key) pair takes the branch its logical distance picks,
// before the one softmax, as CpuAttention does.
//
// DPL (dimensions of the output per lane, head_dim / 32 rounded up) is a template parameter, so that
// the accumulators are registers sized to the head and no loop runs over dimensions that do not exist.
//
// Decode has few items, so the key list is also split over gridDim.y blocks; each writes its
// unnormalised output, max and sum, and attention_combine merges them. Keys come in token order, so
// a block stops at the first key after its last query (the causal mask).
#include <math_constants.h>
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

template <typename T, int DPL>
__device__ void attend(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                       long long value_offset, int layer, int kv_heads, int head_dim, int group, const int* items,
                       const int* key_offsets, const int* key_blocks, const int* key_positions,
                       const int* query_shift, int block_size, int key_length, PositionMap map, RopeTables rope,
                       float scale, int chunks_per_split, float* part_o, float* part_ml) {
  constexpr int RPW = ATT_ROWS_PER_WARP;
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

  float m[RPW], l[RPW], acc[RPW][DPL];
#pragma unroll
  for (int rr = 0; rr < RPW; rr++) {
    m[rr] = -CUDART_INF_F;
    l[rr] = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[rr][i] = 0.f;
  }
  const float* my_qn = qn + warp * RPW * DP;
  const float* my_qg = qg + warp * RPW * DP;
  // The key this thread loads and rotates, and its share of the dimensions.
  int load_key = tid / ATT_KEY_THREADS, load_sub = tid % ATT_KEY_THREADS;

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
      int logical = 0;
      ktok[tid] = plan_key(key_blocks, key_positions, from, total, block_size, key_length, f0 + tid, &logical);
      klog[tid] = logical;
    }
    __syncthreads();
    {
      int token = ktok[load_key];
      float* kr = kn + load_key * DP;
      float* gr = kg + load_key * DP;
      float* vr = vs + load_key * D;
      if (token != INT_MAX) {
        KvRow<T> ks = kv_read<T>(pages, value_offset, layer, kv_heads, D, kv_head, token, false);
        KvRow<T> vsrc = kv_read<T>(pages, value_offset, layer, kv_heads, D, kv_head, token, true);
        for (int d = load_sub; d < D; d += ATT_KEY_THREADS) {
          float kx = ks[d];
          kr[d] = kx;
          if (two) gr[d] = kx;
          vr[d] = vsrc[d];
        }
      } else {
        for (int d = load_sub; d < D; d += ATT_KEY_THREADS) {
          kr[d] = 0.f;
          if (two) gr[d] = 0.f;
          vr[d] = 0.f;
        }
      }
      // A key's threads are neighbours in one warp: ordering the warp is enough before they rotate
      // pairs whose halves another of them loaded.
      __syncwarp();
      if (token != INT_MAX) {
        for (int i = load_sub; i < half; i += ATT_KEY_THREADS) {
          rope_rotate_pair(rope, kr, half, i, map.neighbour(klog[load_key]));
          if (two) rope_rotate_pair(rope, gr, half, i, map.grouped_key(klog[load_key]));
        }
      }
    }
    __syncthreads();

    // Scores of this lane's key against the warp's rows, both branches under Self-Extend.
    int key_token = ktok[lane];
    long long key_logical = klog[lane];
    float s[RPW], sg[RPW];
#pragma unroll
    for (int rr = 0; rr < RPW; rr++) s[rr] = sg[rr] = 0.f;
    const float* kv = kn + lane * DP;
    for (int d = 0; d < D; d++) {
      float kd = kv[d];
#pragma unroll
      for (int rr = 0; rr < RPW; rr++) s[rr] += my_qn[rr * DP + d] * kd;
    }
    if (two) {
      const float* kgv = kg + lane * DP;
      for (int d = 0; d < D; d++) {
        float kd = kgv[d];
#pragma unroll
        for (int rr = 0; rr < RPW; rr++) sg[rr] += my_qg[rr * DP + d] * kd;
      }
    }

    float p[RPW];
#pragma unroll
    for (int rr = 0; rr < RPW; rr++) {
      int r = warp * RPW + rr;
      float x = -CUDART_INF_F;
      if (key_token <= qtok[r]) x = (map.grouped(qpos[r] - key_logical) ? sg[rr] : s[rr]) * scale;
      float m_new = fmaxf(m[rr], warp_max(x));
      p[rr] = 0.f;
      if (m_new == -CUDART_INF_F) continue;  // no visible key yet for this row (warp-uniform)
      p[rr] = x == -CUDART_INF_F ? 0.f : expf(x - m_new);
      float correction = expf(m[rr] - m_new);
      l[rr] = l[rr] * correction + warp_sum(p[rr]);
      m[rr] = m_new;
#pragma unroll
      for (int i = 0; i < DPL; i++) acc[rr][i] *= correction;
    }
    for (int j = 0; j < ATT_KEYS; j++) {
      float v[DPL];
#pragma unroll
      for (int i = 0; i < DPL; i++) {
        int d = lane + 32 * i;
        v[i] = d < D ? vs[j * D + d] : 0.f;
      }
#pragma unroll
      for (int rr = 0; rr < RPW; rr++) {
        float pj = __shfl_sync(0xffffffffu, p[rr], j);
#pragma unroll
        for (int i = 0; i < DPL; i++) acc[rr][i] += pj * v[i];
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < RPW; rr++) {
    int r = warp * RPW + rr;
    if (r >= rows) continue;
    if (part_o == nullptr) {
      int head = kv_head * group + g0 + r % ng;
      float* o = out + (size_t)(t0 + r / ng - chunk_start) * q_cols + (size_t)head * D;
      float inv = 1.0f / l[rr];
#pragma unroll
      for (int i = 0; i < DPL; i++) {
        int d = lane + 32 * i;
        if (d < D) o[d] = acc[rr][i] * inv;
      }
    } else {
      size_t prow = ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * ATT_ROWS + r;
#pragma unroll
      for (int i = 0; i < DPL; i++) {
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

// One kernel per output width for bf16 pages (the fast path): attention_bf16_d<32·DPL> serves head_dim
// up to 32·DPL. fp32 pages are the precision reference, not a speed path: one kernel serves every width.
// So does one kernel for fp8 pages, whose plans come here only under Self-Extend or at head widths the
// specialised kernels do not take.
#define ATTENTION_KERNEL(NAME, T, DPL)                                                                             \
  extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) NAME(                                               \
      float* out, const float* q, int q_cols, int chunk_start, const long long* pages, long long value_offset,      \
      int layer, int kv_heads, int head_dim, int group, const int* items, const int* key_offsets,                  \
      const int* key_blocks, const int* key_positions, const int* query_shift, int block_size, int key_length,     \
      int se_group, int se_window, int period, const float* lo_cos, const float* lo_sin, const float* hi_cos,      \
      const float* hi_sin, float rope_factor, int interleaved, float scale, int chunks_per_split, float* part_o,    \
      float* part_ml) {                                                                                            \
    PositionMap map{se_group, se_window, period};                                                                  \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    attend<T, DPL>(out, q, q_cols, chunk_start, pages, value_offset, layer, kv_heads, head_dim, group, items,      \
                   key_offsets, key_blocks, key_positions, query_shift, block_size, key_length, map, rope, scale,  \
                   chunks_per_split, part_o, part_ml);                                                             \
  }

ATTENTION_KERNEL(attention_f32, float, 8)
ATTENTION_KERNEL(attention_fp8, fp8, 8)
ATTENTION_KERNEL(attention_bf16_d32, __nv_bfloat16, 1)
ATTENTION_KERNEL(attention_bf16_d64, __nv_bfloat16, 2)
ATTENTION_KERNEL(attention_bf16_d128, __nv_bfloat16, 4)
ATTENTION_KERNEL(attention_bf16_d256, __nv_bfloat16, 8)
