// What the tensor-core attention kernels (attention_tc.cu on mma.sync, attention_wgmma.cu on Hopper's
// wgmma) share: a work item's rows and queries, the walk over its plan entry's keys a step at a time
// (attention_tc.cu's with cp.async into shared memory), and packing probabilities into bf16 operands.
// Each kernel lays its shared tiles out its own way and says where a row's element goes (`at`: a byte
// offset).
#pragma once
#include <climits>
#include <cuda_bf16.h>
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

// 16 bytes from global to shared memory without passing through registers; zeros when !valid.
__device__ __forceinline__ void copy16_async(void* dst, const void* src, bool valid) {
  unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 16 : 0));
}

// Waits until this thread's cp.async copies have landed. attention_tc.cu walks keys with two buffers and one
// barrier a step: after this and the barrier, step c's keys, values and tokens are everyone's, and every
// thread is past step c - 1, so stage(c + 1) may refill its buffer while step c is computed.
__device__ __forceinline__ void copies_landed() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}

// This block's work item (ATT_ITEM_INTS ints of the plan's list): up to a kernel's rows of (query token,
// query head) pairs of plan entry e, tokens t0 .. t0 + nt - 1 major, heads g0 .. g0 + ng - 1 of the KV
// head's group minor.
struct TcItem {
  int e, t0, nt, g0, ng, kv_head, rows;
};

__device__ __forceinline__ TcItem tc_item(const int* items, int first_item, int kv_heads) {
  const int* item = items + ATT_ITEM_INTS * (first_item + blockIdx.x);
  return TcItem{item[0], item[1], item[2], item[3], item[4], item[0] % kv_heads, item[2] * item[4]};
}

// The item's rows' tokens (qtok: -1 for a padding row, which sees no key) and query positions, then its
// queries rotated to those positions and scaled by log2(e) / sqrt(d), so that scores come out of the
// products ready for exp2, as bf16 at byte at(r, dimension) of qs. Thread tid of `threads` (at least
// ROWS) does its share; sync() is their barrier. The caller adds the barrier after.
template <int ROWS, int D, typename At, typename Sync>
__device__ __forceinline__ void tc_load_queries(const TcItem& it, const float* q, int q_cols, int chunk_start,
                                                int group, const int* query_shift, PositionMap map, RopeTables rope,
                                                float scale, int* qtok, int* qpos, unsigned char* qs, At at, int tid,
                                                int threads, Sync sync) {
  constexpr int HALF = D / 2;
  if (tid < ROWS) {
    bool valid = tid < it.rows;
    qtok[tid] = valid ? it.t0 + tid / it.ng : -1;
    qpos[tid] = valid ? it.t0 + tid / it.ng + query_shift[it.e] : 0;
  }
  sync();
  const float scale_log2 = scale * 1.4426950408889634f;
  for (int idx = tid; idx < ROWS * HALF; idx += threads) {
    int r = idx / HALF, i = idx % HALF;
    int a = rope_first(rope, HALF, i), b = rope_second(rope, HALF, i);
    float x0 = 0.f, x1 = 0.f;
    if (r < it.rows) {
      const float* qr = q + (size_t)(it.t0 + r / it.ng - chunk_start) * q_cols +
                        (size_t)(it.kv_head * group + it.g0 + r % it.ng) * D;
      float c, s;
      rope_cos_sin(rope, HALF, i, map.neighbour(qpos[r]), &c, &s);
      x0 = (qr[a] * c - qr[b] * s) * scale_log2;
      x1 = (qr[b] * c + qr[a] * s) * scale_log2;
    }
    *reinterpret_cast<__nv_bfloat16*>(qs + at(r, a)) = __float2bfloat16_rn(x0);
    *reinterpret_cast<__nv_bfloat16*>(qs + at(r, b)) = __float2bfloat16_rn(x1);
  }
}

// The keys of an item's plan entry, KEYS at a time (a step), in token order: keys from the rows that
// rope_keys.cu rotated to the entry's positions (row f of krot for the entry's f-th key), values from
// bf16 pages or from the rows rope_keys.cu wrote as bf16 (vrows). THREADS threads copy (stage, for
// attention_tc.cu; attention_wgmma.cu's producer copies whole key tiles from krot and vrows itself).
template <int D, int KEYS, int THREADS>
struct TcKeys {
  const int* key_blocks;
  const long long* pages;
  long long value_offset;
  const __nv_bfloat16* krot;
  const __nv_bfloat16* vrows;
  int layer, kv_heads, kv_head, from, total, block_size, block_shift, key_length, last_query;
  bool pow2, whole;

  // The token of the entry's f-th key (f < total), INT_MAX past the cache's length.
  __device__ __forceinline__ int token(int f) const {
    int b = pow2 ? f >> block_shift : f / block_size;
    int t = key_blocks[from + b] * block_size + (f - b * block_size);
    return t < key_length ? t : INT_MAX;
  }

  // Whether step c has a key the item's queries may see (keys come in token order).
  __device__ __forceinline__ bool live(int c) const { return c * KEYS < total && token(c * KEYS) <= last_query; }

  // Starts copying step c's keys and values to kbuf and vbuf (one cp.async group), key j's 16-byte piece
  // p at byte at(j, p) of each, and records the keys' tokens in ktok (INT_MAX for none). When plan
  // blocks are whole steps, a step's keys are consecutive tokens of one block and one page (a page's
  // KV_PAGE tokens are a multiple of KEYS): one lookup for the step instead of one per key.
  template <typename At>
  __device__ __forceinline__ void stage(int c, unsigned char* kbuf, unsigned char* vbuf, int* ktok, At at) const {
    constexpr int V8 = D / 8, KEY_STRIDE = THREADS / V8, PER_THREAD = KEYS / KEY_STRIDE;
    // A thread copies the same 16-byte piece of keys sj, sj + KEY_STRIDE, ... of every step.
    int sj = threadIdx.x / V8, piece = threadIdx.x % V8, f0 = c * KEYS;
    if (whole) {
      int b = pow2 ? f0 >> block_shift : f0 / block_size;
      int first_token = key_blocks[from + b] * block_size + (f0 - b * block_size);
      const __nv_bfloat16* first_value =
          vrows != nullptr ? vrows + (size_t)f0 * D
                           : kv_row<__nv_bfloat16>(pages, value_offset, layer, kv_heads, D, kv_head, first_token);
#pragma unroll
      for (int i = 0; i < PER_THREAD; i++) {
        int j = sj + i * KEY_STRIDE;
        bool valid = f0 + j < total && first_token + j < key_length;
        if (piece == 0) ktok[j] = valid ? first_token + j : INT_MAX;
        copy16_async(kbuf + at(j, piece), valid ? krot + (size_t)(f0 + j) * D + 8 * piece : krot, valid);
        copy16_async(vbuf + at(j, piece), valid ? first_value + j * D + 8 * piece : krot, valid);
      }
    } else {
#pragma unroll
      for (int i = 0; i < PER_THREAD; i++) {
        int j = sj + i * KEY_STRIDE, f = f0 + j;
        int t = f < total ? token(f) : INT_MAX;
        bool valid = t != INT_MAX;
        if (piece == 0) ktok[j] = t;
        const __nv_bfloat16* v =
            !valid             ? krot
            : vrows != nullptr ? vrows + (size_t)f * D + 8 * piece
                               : kv_row<__nv_bfloat16>(pages, value_offset, layer, kv_heads, D, kv_head, t) + 8 * piece;
        copy16_async(kbuf + at(j, piece), valid ? krot + (size_t)f * D + 8 * piece : krot, valid);
        copy16_async(vbuf + at(j, piece), v, valid);
      }
    }
    asm volatile("cp.async.commit_group;\n" ::);
  }
};

template <int D, int KEYS, int THREADS>
__device__ __forceinline__ TcKeys<D, KEYS, THREADS> tc_keys(const TcItem& it, const long long* pages,
                                                           long long value_offset, int layer, int kv_heads,
                                                           const int* key_offsets, const int* key_blocks,
                                                           int block_size, int key_length,
                                                           const __nv_bfloat16* rotated,
                                                           const __nv_bfloat16* values, const int* row_base) {
  TcKeys<D, KEYS, THREADS> k;
  k.key_blocks = key_blocks;
  k.pages = pages;
  k.value_offset = value_offset;
  k.krot = rotated + (size_t)row_base[it.e] * D;
  k.vrows = values == nullptr ? nullptr : values + (size_t)row_base[it.e] * D;
  k.layer = layer;
  k.kv_heads = kv_heads;
  k.kv_head = it.kv_head;
  k.from = key_offsets[it.e];
  k.total = (key_offsets[it.e + 1] - k.from) * block_size;  // an entry lists fewer than 2^31 keys
  k.block_size = block_size;
  k.pow2 = (block_size & (block_size - 1)) == 0;
  k.block_shift = __ffs(block_size) - 1;
  k.key_length = key_length;
  k.last_query = it.t0 + it.nt - 1;
  k.whole = block_size % KEYS == 0;
  return k;
}

// A tensor-core attention kernel (CudaAttention launches them all with these arguments): items
// [first_item, first_item + gridDim.x) of the plan's work list, run by ATTEND<D> (attend_tc,
// attend_wgmma), BLOCKS blocks of THREADS threads a multiprocessor.
#define TC_ATTENTION_KERNEL(NAME, ATTEND, D, THREADS, BLOCKS)                                                      \
  extern "C" __global__ void __launch_bounds__(THREADS, BLOCKS) NAME(                                              \
      float* out, const float* q, int q_cols, int chunk_start, const long long* pages, long long value_offset,      \
      int layer, int kv_heads, int group, const int* items, int first_item, const int* key_offsets,                \
      const int* key_blocks, const int* key_positions, const int* query_shift, int block_size, int key_length,     \
      int period, const float* lo_cos, const float* lo_sin, const float* hi_cos, const float* hi_sin,              \
      float rope_factor, int interleaved, float scale, const __nv_bfloat16* rotated, const __nv_bfloat16* values, \
      const int* row_base) {                                                                                       \
    PositionMap map{1, 0, period};                                                                                 \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    ATTEND<D>(out, q, q_cols, chunk_start, pages, value_offset, layer, kv_heads, group, items, first_item,         \
              key_offsets, key_blocks, key_positions, query_shift, block_size, key_length, map, rope, scale, rotated,  \
              values, row_base);                                                                                   \
  }
