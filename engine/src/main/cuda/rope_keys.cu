// Rotates the keys that plan entries list to their plan positions (keys are cached before RoPE), once
// per entry and chunk, into bf16 rows for the tensor-core kernels, whose items share an entry's keys:
// row row_base[e] + f holds the f-th key of entry e's list (zeros past the cache's length). It also
// writes the values, as bf16 (fp8 pages' scaled), into the same rows of values_out where the kernel
// asks for them: attention_tc.cu reads bf16 pages itself, attention_wgmma.cu copies whole tiles. Rows
// are laid out one after another or (tiled) as swizzle.cuh's key tiles, each entry's list then padded
// with zero rows to whole tiles. Block (x, y) rotates keys [64 x, 64 x + 64) of entry first_entry + y;
// a thread takes four pairs of one key, so that its loads and stores are 4 or 8 bytes wide and the
// plan lookup serves four pairs.
#include "attention.cuh"
#include "kv_layout.cuh"
#include "rope.cuh"
#include "swizzle.cuh"

#define ROPE_KEYS_PER_BLOCK 64

// Elements d .. d + 3 of a row as floats (d a multiple of 4: 8- or 4-byte aligned).
__device__ __forceinline__ void load4(const __nv_bfloat16* row, int d, float (&x)[4]) {
  uint2 u = *reinterpret_cast<const uint2*>(row + d);
  float2 a = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&u.x));
  float2 b = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&u.y));
  x[0] = a.x, x[1] = a.y, x[2] = b.x, x[3] = b.y;
}
__device__ __forceinline__ void load4(const fp8* row, int d, float (&x)[4]) {
#pragma unroll
  for (int j = 0; j < 4; j++) x[j] = static_cast<float>(row[d + j]);
}
__device__ __forceinline__ void store4(__nv_bfloat16* at, const float (&x)[4]) {
  __nv_bfloat162 a = __floats2bfloat162_rn(x[0], x[1]), b = __floats2bfloat162_rn(x[2], x[3]);
  uint2 u = {*reinterpret_cast<unsigned*>(&a), *reinterpret_cast<unsigned*>(&b)};
  *reinterpret_cast<uint2*>(at) = u;
}

// Where row `row` of an output goes: rows one after another for attention_tc.cu, swizzle.cuh's key tiles
// for attention_wgmma.cu. at(d) is element d's address (d a multiple of 4: four elements stay in one
// 16-byte piece of a tile).
struct RowOut {
  __nv_bfloat16* base;
  long long row;
  int head_dim;
  bool tiled;
  __device__ __forceinline__ __nv_bfloat16* at(int d) const {
    return tiled ? (__nv_bfloat16*)((char*)base + key_tile_byte(row, d, head_dim)) : base + row * head_dim + d;
  }
};

// Pairs i .. i + 3 of a row: first[p] and second[p] are the dimensions pair i + p rotates together.
template <typename T>
__device__ __forceinline__ void load_pairs(const T* row, int half, int i, bool interleaved, float scale,
                                           float (&first)[4], float (&second)[4]) {
  if (interleaved) {  // dimensions 2i .. 2i + 7
    float a[4], b[4];
    load4(row, 2 * i, a);
    load4(row, 2 * i + 4, b);
    first[0] = a[0], second[0] = a[1], first[1] = a[2], second[1] = a[3];
    first[2] = b[0], second[2] = b[1], first[3] = b[2], second[3] = b[3];
  } else {  // dimensions i .. i + 3 and half + i .. half + i + 3
    load4(row, i, first);
    load4(row, half + i, second);
  }
#pragma unroll
  for (int p = 0; p < 4; p++) first[p] *= scale, second[p] *= scale;
}

__device__ __forceinline__ void store_pairs(const RowOut& row, int half, int i, bool interleaved,
                                            const float (&first)[4], const float (&second)[4]) {
  if (interleaved) {
    store4(row.at(2 * i), {first[0], second[0], first[1], second[1]});
    store4(row.at(2 * i + 4), {first[2], second[2], first[3], second[3]});
  } else {
    store4(row.at(i), first);
    store4(row.at(half + i), second);
  }
}

template <typename T>
__device__ void rope_keys(__nv_bfloat16* dst, __nv_bfloat16* values_out, const int* row_base, int first_entry,
                          const long long* pages, long long value_offset, int layer, int kv_heads, int head_dim,
                          const int* key_offsets, const int* key_blocks, const int* key_positions, int block_size,
                          int key_length, PositionMap map, RopeTables rope, bool tiled) {
  int e = first_entry + blockIdx.y, kv_head = e % kv_heads, half = head_dim / 2, quads = half / 4;
  int from = key_offsets[e], to = key_offsets[e + 1];
  long long total = (long long)(to - from) * block_size;
  // A last tile's rows past the list are zeros: the kernel masks them, but its products still read them.
  long long rows = tiled ? (total + KEY_TILE - 1) / KEY_TILE * KEY_TILE : total;
  for (int idx = threadIdx.x; idx < ROPE_KEYS_PER_BLOCK * quads; idx += blockDim.x) {
    long long f = (long long)blockIdx.x * ROPE_KEYS_PER_BLOCK + idx / quads;
    int i = idx % quads * 4;
    if (f >= rows) break;
    int logical = 0;
    int t = plan_key(key_blocks, key_positions, from, total, block_size, key_length, f, &logical);
    float k0[4] = {0.f, 0.f, 0.f, 0.f}, k1[4] = {0.f, 0.f, 0.f, 0.f}, v0[4] = {0.f, 0.f, 0.f, 0.f},
          v1[4] = {0.f, 0.f, 0.f, 0.f};
    if (t != INT_MAX) {
      KvRow<T> kr = kv_read<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t, false);
      load_pairs(kr.x, half, i, rope.interleaved, kr.scale, k0, k1);
      long long pos = map.neighbour(logical);
      int lo = (int)(pos % ROPE_SPLIT), hi = (int)(pos / ROPE_SPLIT);
      float4 lc = *reinterpret_cast<const float4*>(rope.lo_cos + lo * half + i);
      float4 ls = *reinterpret_cast<const float4*>(rope.lo_sin + lo * half + i);
      float4 hc = *reinterpret_cast<const float4*>(rope.hi_cos + (size_t)hi * half + i);
      float4 hs = *reinterpret_cast<const float4*>(rope.hi_sin + (size_t)hi * half + i);
      float lcs[4] = {lc.x, lc.y, lc.z, lc.w}, lss[4] = {ls.x, ls.y, ls.z, ls.w};
      float hcs[4] = {hc.x, hc.y, hc.z, hc.w}, hss[4] = {hs.x, hs.y, hs.z, hs.w};
#pragma unroll
      for (int p = 0; p < 4; p++) {  // rope_cos_sin's angle addition, four pairs at once
        float c = (lcs[p] * hcs[p] - lss[p] * hss[p]) * rope.factor;
        float s = (lss[p] * hcs[p] + lcs[p] * hss[p]) * rope.factor;
        float x0 = k0[p], x1 = k1[p];
        k0[p] = x0 * c - x1 * s;
        k1[p] = x1 * c + x0 * s;
      }
      if (values_out != nullptr) {
        KvRow<T> vr = kv_read<T>(pages, value_offset, layer, kv_heads, head_dim, kv_head, t, true);
        load_pairs(vr.x, half, i, rope.interleaved, vr.scale, v0, v1);
      }
    }
    long long row = row_base[e] + f;
    store_pairs(RowOut{dst, row, head_dim, tiled}, half, i, rope.interleaved, k0, k1);
    if (values_out != nullptr) store_pairs(RowOut{values_out, row, head_dim, tiled}, half, i, rope.interleaved, v0, v1);
  }
}

#define ROPE_KEYS_KERNEL(NAME, T)                                                                                  \
  extern "C" __global__ void NAME(__nv_bfloat16* dst, __nv_bfloat16* values_out, const int* row_base,             \
                                  int first_entry, const long long* pages, long long value_offset, int layer,      \
                                  int kv_heads, int head_dim, const int* key_offsets, const int* key_blocks,       \
                                  const int* key_positions, int block_size, int key_length, int period,           \
                                  const float* lo_cos, const float* lo_sin, const float* hi_cos,                  \
                                  const float* hi_sin, float rope_factor, int interleaved, int tiled) {           \
    PositionMap map{1, 0, period};                                                                                 \
    RopeTables rope{lo_cos, lo_sin, hi_cos, hi_sin, rope_factor, interleaved};                                     \
    rope_keys<T>(dst, values_out, row_base, first_entry, pages, value_offset, layer, kv_heads, head_dim,           \
                 key_offsets, key_blocks, key_positions, block_size, key_length, map, rope, tiled != 0);           \
  }

ROPE_KEYS_KERNEL(rope_keys_bf16, __nv_bfloat16)
ROPE_KEYS_KERNEL(rope_keys_fp8, fp8)
