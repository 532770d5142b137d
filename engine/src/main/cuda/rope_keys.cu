// Rotates the keys that plan entries list to their plan positions (keys are cached before RoPE), once
// per entry and chunk, into bf16 rows for attention_tc.cu, whose items share an entry's keys: row
// row_base[e] + f holds the f-th key of entry e's list (zeros past the cache's length). From fp8 pages
// it also writes the values, scaled to bf16, into the same rows of values_out: the tensor-core kernel
// copies bf16 rows as they are. Block (x, y) rotates keys [64 x, 64 x + 64) of entry first_entry + y,
// one thread per (key, pair).
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"

#define ROPE_KEYS_PER_BLOCK 64

template <typename T>
__device__ void rope_keys(__nv_bfloat16* dst, __nv_bfloat16* values_out, const int* row_base, int first_entry,
                          const long long* pages, long long value_offset, int layer, int kv_heads, int head_dim,
                          const int* key_offsets, const int* key_blocks, const int* key_positions, int block_size,
                          int key_length, PositionMap map, RopeTables rope) {
  int e = first_entry + blockIdx.y, kv_head = e % kv_heads, half = head_dim / 2;
  int from = key_offsets[e], to = key_offsets[e + 1];
  long long total = (long long)(to - from) * block_size;
  for (int idx = threadIdx.x; idx < ROPE_KEYS_PER_BLOCK * half; idx += blockDim.x) {
    long long f = (long long)blockIdx.x * ROPE_KEYS_PER_BLOCK + idx / half;
    int i = idx % half;
    if (f >= total) break;
    int logical = 0;
    int t = plan_key(key_blocks, key_positions, from, total, block_size, key_length, f, &logical);
    int a0 = rope_first(rope, half, i), a1 = rope_second(rope, half, i);
    float x0 = 0.f, x1 = 0.f, v0 = 0.f, v1 = 0.f;
    if (t != INT_MAX) {
      KvRow<T> kr = kv_read<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t, false);
      float k0 = kr[a0], k1 = kr[a1], c, s;
      rope_cos_sin(rope, half, i, map.neighbour(logical), &c, &s);
      x0 = k0 * c - k1 * s;
      x1 = k1 * c + k0 * s;
      if (values_out != nullptr) {
        KvRow<T> vr = kv_read<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t, true);
        v0 = vr[a0];
        v1 = vr[a1];
      }
    }
    size_t row = ((size_t)row_base[e] + f) * head_dim;
    dst[row + a0] = __float2bfloat16_rn(x0);
    dst[row + a1] = __float2bfloat16_rn(x1);
    if (values_out != nullptr) {
      values_out[row + a0] = __float2bfloat16_rn(v0);
      values_out[row + a1] = __float2bfloat16_rn(v1);
    }
  }
}

#define ROPE_KEYS_KERNEL(NAME, T)                                                                                  \
  extern "C" __global__ void NAME(__nv_bfloat16* dst, __nv_bfloat16* values_out, const int* row_base,             \
                                  int first_entry, const long long* pages, long long value_offset, int layer,      \
                                  int kv_heads, int head_dim, const int* key_offsets, const int* key_blocks,       \
                                  const int* key_positions, int block_size, int key_length, int period,           \
                                  const float* lo_cos, const float* lo_sin, const float* hi_cos,                  \
                                  const float* hi_sin, float rope_factor, int interleaved) {                      \
    PositionMap map{1, 0, period};                                                                                 \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    rope_keys<T>(dst, values_out, row_base, first_entry, pages, value_offset, layer, kv_heads, head_dim,           \
                 key_offsets, key_blocks, key_positions, block_size, key_length, map, rope);                       \
  }

ROPE_KEYS_KERNEL(rope_keys_bf16, __nv_bfloat16)
ROPE_KEYS_KERNEL(rope_keys_fp8, fp8)
