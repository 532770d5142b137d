// GGUF's Q4_0 weights kept quantized on the GPU: blocks of 32 4-bit quants q with one fp16 scale d,
// weight d·(q − 8); ggml packs element j of a block in the low nibble of byte j and element j + 16 in
// its high nibble. Stored split as Q8_0 is (CudaWeight.scales): the 16 bytes of every block in the
// file's order, [rows][cols / 2], then the scales [rows][cols / 32] as fp16. q4_0_unpack splits the
// file's 18-byte blocks at load; gemv_q4_0_1 is the decode product (0.56 bytes a weight where bf16
// reads 2), gemv3_q4_0 and gemv_swiglu_q4_0 the fused q/k/v and gate/up ones; q4_0_to_bf16 dequantizes
// a matrix for a prefill GEMM (cuBLAS); embed_q4_0 gathers token rows.
#include <cuda_fp16.h>
#include "common.cuh"

#define Q4_BLOCK 32
#define Q4_BLOCK_BYTES 18
#define Q4_ROWS 4
#define Q4_WARPS 8
// On Hopper, four blocks a multiprocessor (64 registers a thread; the compiler chose 76, three blocks):
// Llama-3-8B's decode at 4K went from 4.6 to 4.2 ms on an H100. gemv3_q4_0 takes three (its three
// matrices' pointers would spill at 64 registers).
#define Q4_BOUNDS HOPPER_BOUNDS(Q4_WARPS * 32, 4)
#define Q4_QKV_BOUNDS HOPPER_BOUNDS(Q4_WARPS * 32, 3)

extern "C" __global__ void q4_0_unpack(uint8_t* qs, __half* scales, const unsigned char* blocks, long long count) {
  for (long long b = blockIdx.x * (long long)blockDim.x + threadIdx.x; b < count;
       b += (long long)gridDim.x * blockDim.x) {
    const unsigned char* src = blocks + Q4_BLOCK_BYTES * b;
    scales[b] = *reinterpret_cast<const __half*>(src);  // 2-byte aligned: blocks are 18 bytes
    for (int j = 0; j < Q4_BLOCK / 2; j++) qs[Q4_BLOCK / 2 * b + j] = src[2 + j];
  }
}

// The four 4-bit values in the low nibbles of a word's bytes (the high nibbles cleared) as floats q − 8:
// each byte becomes the low mantissa byte of 2^23 (one byte permute), and 2^23 + 8 is subtracted.
__device__ __forceinline__ float4 q4x4_to_float(unsigned nibbles) {
  const float bias = 8388616.f;  // 2^23 + 8
  return make_float4(__uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7440)) - bias,
                     __uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7441)) - bias,
                     __uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7442)) - bias,
                     __uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7443)) - bias);
}

__device__ __forceinline__ float dot4(float4 q, float4 a) { return q.x * a.x + q.y * a.y + q.z * a.z + q.w * a.w; }

// The dot products of rows [row0, row0 + Q4_ROWS) with one activation row, into sums (visible to the
// whole block; every thread of the block calls it): lane v of the block's warps takes half-block v
// (bytes 8h..8h+7 of block v/2, h = v % 2: elements 8h..8h+7 in the low nibbles, 16+8h..16+8h+7 in the
// high ones) of each of the Q4_ROWS rows; the warps' sums meet in shared memory. in % 32 == 0. (Whole
// blocks a lane, eight rows and four warps a block, ran 11 % slower: fewer warps in flight.)
__device__ __forceinline__ void q4_0_block_dots(const uint8_t* qs, const __half* scales, const float* x, int in,
                                                int out, int row0, float (&sums)[Q4_ROWS]) {
  constexpr int W = Q4_ROWS;
  __shared__ float partial[Q4_WARPS][W];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float acc[W];
#pragma unroll
  for (int w = 0; w < W; w++) acc[w] = 0.f;
  int halves = in >> 4, blocks = in / Q4_BLOCK;
#pragma unroll 2
  for (int v = warp * 32 + lane; v < halves; v += 32 * Q4_WARPS) {
    int2 p[W];
    float s[W];
#pragma unroll
    for (int w = 0; w < W; w++) {
      size_t row = min(row0 + w, out - 1);  // past the last row: repeat it, the sums are not written
      p[w] = __ldcs(reinterpret_cast<const int2*>(qs + row * (in / 2)) + v);
      s[w] = __half2float(scales[row * blocks + (v >> 1)]);
    }
    const float4* lo = reinterpret_cast<const float4*>(x + (v >> 1) * Q4_BLOCK + (v & 1) * 8);
    float4 a[4] = {lo[0], lo[1], lo[4], lo[5]};  // elements 8h.., then 16 + 8h..
#pragma unroll
    for (int w = 0; w < W; w++) {
      unsigned w0 = (unsigned)p[w].x, w1 = (unsigned)p[w].y;
      float dot = dot4(q4x4_to_float(w0 & 0x0F0F0F0Fu), a[0]) + dot4(q4x4_to_float(w1 & 0x0F0F0F0Fu), a[1]) +
                  dot4(q4x4_to_float((w0 >> 4) & 0x0F0F0F0Fu), a[2]) + dot4(q4x4_to_float((w1 >> 4) & 0x0F0F0F0Fu), a[3]);
      acc[w] += s[w] * dot;
    }
  }
  block_row_sums(acc, partial, sums);
}

// y = W x for one activation row; with `accumulate` the product is added to y. Chunks of 2 to 4 tokens
// take the dequantizing GEMM path, which keeps the fatbin small. The host launches ceil(out / Q4_ROWS)
// blocks of Q4_WARPS warps.
extern "C" __global__ void Q4_BOUNDS gemv_q4_0_1(
    float* y, const uint8_t* qs, const __half* scales, const float* x, int in, int out, int accumulate) {
  __shared__ float sums[Q4_ROWS];
  int row0 = blockIdx.x * Q4_ROWS;
  q4_0_block_dots(qs, scales, x, in, out, row0, sums);
  if (threadIdx.x < Q4_ROWS && row0 + threadIdx.x < out) {
    float* at = y + row0 + threadIdx.x;
    *at = accumulate ? *at + sums[threadIdx.x] : sums[threadIdx.x];
  }
}

// One token's q, k and v in one launch (as gemv3_bf16): blocks [0, b0) take W0's rows, the next b1
// W1's, then W2's, b_i = ceil(out_i / Q4_ROWS).
extern "C" __global__ void Q4_QKV_BOUNDS gemv3_q4_0(
    float* y0, float* y1, float* y2, const uint8_t* q0, const uint8_t* q1, const uint8_t* q2, const __half* s0,
    const __half* s1, const __half* s2, const float* x, int in, int out0, int out1, int out2) {
  __shared__ float sums[Q4_ROWS];
  int b = blockIdx.x, b0 = (out0 + Q4_ROWS - 1) / Q4_ROWS, b1 = (out1 + Q4_ROWS - 1) / Q4_ROWS;
  float* y = y0;
  const uint8_t* q = q0;
  const __half* s = s0;
  int out = out0;
  if (b >= b0) {  // one call site for the three matrices: one copy of the product's code
    b -= b0, y = y1, q = q1, s = s1, out = out1;
    if (b >= b1) b -= b1, y = y2, q = q2, s = s2, out = out2;
  }
  int row0 = b * Q4_ROWS;
  q4_0_block_dots(q, s, x, in, out, row0, sums);
  if (threadIdx.x < Q4_ROWS && row0 + threadIdx.x < out) y[row0 + threadIdx.x] = sums[threadIdx.x];
}

// One token's SwiGLU MLP first half (as gemv_swiglu_bf16): y = silu(Wg x) * (Wu x), a block taking
// Q4_ROWS rows of each weight.
extern "C" __global__ void Q4_BOUNDS gemv_swiglu_q4_0(
    float* y, const uint8_t* qg, const __half* sg, const uint8_t* qu, const __half* su, const float* x, int in,
    int out) {
  __shared__ float g[Q4_ROWS], u[Q4_ROWS];
  int row0 = blockIdx.x * Q4_ROWS;
  q4_0_block_dots(qg, sg, x, in, out, row0, g);
  q4_0_block_dots(qu, su, x, in, out, row0, u);
  store_swiglu_rows(y, g, u, row0, out);
}

// Element i of a Q4_0 matrix (row-major, rows of whole blocks).
__device__ __forceinline__ float q4_0_at(const uint8_t* qs, const __half* scales, long long i) {
  long long block = i / Q4_BLOCK;
  int j = (int)(i % Q4_BLOCK);
  uint8_t byte = qs[block * (Q4_BLOCK / 2) + (j & 15)];
  int q = j < 16 ? (byte & 15) : (byte >> 4);
  return (float)(q - 8) * __half2float(scales[block]);
}

extern "C" __global__ void q4_0_to_bf16(__nv_bfloat16* dst, const uint8_t* qs, const __half* scales, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16_rn(q4_0_at(qs, scales, i));
}

extern "C" __global__ void embed_q4_0(float* out, const uint8_t* qs, const __half* scales, const int* tokens, int token, int cols) {
  long long row = (long long)embed_token(tokens, token) * cols;
  float* o = out + (size_t)blockIdx.x * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) o[i] = q4_0_at(qs, scales, row + i);
}
