// GGUF's Q8_0 weights kept quantized on the GPU: blocks of 32 int8 quants with one fp16 scale, stored
// split so that loads are aligned: the quants [rows][cols] as int8, then the scales [rows][cols / 32]
// as fp16 (CudaWeight.q8Scales). q8_0_unpack splits the file's 34-byte blocks into that layout at load;
// gemv_q8_0_1 is the decode product (bound by memory bandwidth, it reads 1.06 bytes a weight where bf16
// reads 2), gemv3_q8_0 and gemv_swiglu_q8_0 its fused forms; q8_0_to_bf16 dequantizes a
// matrix for a prefill GEMM (cuBLAS); embed_q8_0 gathers token rows.
#include <cuda_fp16.h>
#include "common.cuh"

#define Q8_BLOCK 32
#define Q8_BLOCK_BYTES 34

extern "C" __global__ void q8_0_unpack(int8_t* qs, __half* scales, const unsigned char* blocks, long long count) {
  for (long long b = blockIdx.x * (long long)blockDim.x + threadIdx.x; b < count;
       b += (long long)gridDim.x * blockDim.x) {
    const unsigned char* src = blocks + Q8_BLOCK_BYTES * b;
    scales[b] = *reinterpret_cast<const __half*>(src);  // 2-byte aligned: blocks are 34 bytes
    for (int j = 0; j < Q8_BLOCK; j++) qs[Q8_BLOCK * b + j] = (int8_t)src[2 + j];
  }
}

// Four int8 quants (one 32-bit word) as floats without the int-to-float conversion, which runs at a
// quarter of the FMA rate: each byte, made unsigned by flipping its sign bit, becomes the low mantissa
// byte of 2^23 (one byte permute), and 2^23 + 128 is subtracted.
__device__ __forceinline__ float4 q8x4_to_float(int word) {
  unsigned u = (unsigned)word ^ 0x80808080u;
  const float bias = 8388736.f;  // 2^23 + 128
  return make_float4(__uint_as_float(__byte_perm(u, 0x4B000000u, 0x7440)) - bias,
                     __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7441)) - bias,
                     __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7442)) - bias,
                     __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7443)) - bias);
}

// y = W x for one activation row: a block of Q8_WARPS warps takes Q8_ROWS consecutive weight
// rows, its warps every Q8_WARPS-th group of 16 quants of each row (a lane's load: half a block, one
// scale; evict-first as in gemv.cu), and the warps' sums meet in shared memory. The rows share each
// activation load: with one weight row a warp, the activations (4 bytes an element against 1 of quants)
// kept the L1 cache busier than the weights kept DRAM. The warps share the rows: with a warp per four
// rows, Llama-3-8B's k and v projections (1,024 rows) ran 256 warps on 132 multiprocessors and read
// DRAM at 7 % of its bandwidth.
#define Q8_ROWS 4
#define Q8_WARPS 8
// On Hopper, four blocks a multiprocessor (64 registers a thread): at the compiler's choice of 80
// registers three fitted, 24 warps a multiprocessor with too few loads in flight (ncu on an H100:
// 1.5-2.7 TB/s, a third of the issue slots used); four took Llama-3-8B's decode at 4K from 4.7-4.8 to
// 4.5 ms.
#define Q8_BOUNDS HOPPER_BOUNDS(Q8_WARPS * 32, 4)

// Leaves the dot products of rows [row0, row0 + Q8_ROWS) with one activation row in sums, visible to
// the whole block. Every thread of the block calls it.
__device__ __forceinline__ void q8_block_dots(const int8_t* qs, const __half* scales, const float* x, int in, int out,
                                              int row0, float (&sums)[Q8_ROWS]) {
  constexpr int W = Q8_ROWS;
  __shared__ float partial[Q8_WARPS][W];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float acc[W];
#pragma unroll
  for (int w = 0; w < W; w++) acc[w] = 0.f;
  int vecs = in >> 4, blocks = in / Q8_BLOCK;
#pragma unroll 2
  for (int v = warp * 32 + lane; v < vecs; v += 32 * Q8_WARPS) {
    int4 p[W];
    float s[W];
#pragma unroll
    for (int w = 0; w < W; w++) {
      size_t row = min(row0 + w, out - 1);  // past the last row: repeat it, the sums are not used
      p[w] = __ldcs(reinterpret_cast<const int4*>(qs + row * in) + v);
      s[w] = __half2float(scales[row * blocks + (v >> 1)]);
    }
    const float4* xr = reinterpret_cast<const float4*>(x) + 4 * v;
    float4 a[4] = {xr[0], xr[1], xr[2], xr[3]};
#pragma unroll
    for (int w = 0; w < W; w++) {
      int words[4] = {p[w].x, p[w].y, p[w].z, p[w].w};
      float dot = 0.f;
#pragma unroll
      for (int k = 0; k < 4; k++) {
        float4 q = q8x4_to_float(words[k]);
        dot += q.x * a[k].x + q.y * a[k].y + q.z * a[k].z + q.w * a[k].w;
      }
      acc[w] += s[w] * dot;
    }
  }
  block_row_sums(acc, partial, sums);
}

__device__ __forceinline__ void q8_gemv_block(float* y, const int8_t* qs, const __half* scales, const float* x, int in,
                                              int out, int row0, bool accumulate) {
  __shared__ float sums[Q8_ROWS];
  q8_block_dots(qs, scales, x, in, out, row0, sums);
  if (threadIdx.x < Q8_ROWS && row0 + threadIdx.x < out) {
    float* at = y + row0 + threadIdx.x;
    *at = accumulate ? *at + sums[threadIdx.x] : sums[threadIdx.x];
  }
}

// y = W x for one activation row; in % 32 == 0; with `accumulate` the product is added to y. Chunks of 2
// to 4 tokens take the dequantizing GEMM path, as Q4_0's and Q4_K's do, which keeps the fatbin small.
// The host launches ceil(out / Q8_ROWS) blocks of Q8_WARPS warps.
extern "C" __global__ void Q8_BOUNDS gemv_q8_0_1(float* y, const int8_t* qs, const __half* scales, const float* x,
                                                 int in, int out, int accumulate) {
  q8_gemv_block(y, qs, scales, x, in, out, blockIdx.x * Q8_ROWS, accumulate != 0);
}

// One token's q, k and v in one launch (as gemv3_bf16): blocks [0, b0) take W0's rows, the next b1
// W1's, then W2's, b_i = ceil(out_i / Q8_ROWS).
extern "C" __global__ void Q8_BOUNDS gemv3_q8_0(
    float* y0, float* y1, float* y2, const int8_t* q0, const int8_t* q1, const int8_t* q2, const __half* s0,
    const __half* s1, const __half* s2, const float* x, int in, int out0, int out1, int out2) {
  int b = blockIdx.x, b0 = (out0 + Q8_ROWS - 1) / Q8_ROWS, b1 = (out1 + Q8_ROWS - 1) / Q8_ROWS;
  if (b < b0) {
    q8_gemv_block(y0, q0, s0, x, in, out0, b * Q8_ROWS, false);
  } else if ((b -= b0) < b1) {
    q8_gemv_block(y1, q1, s1, x, in, out1, b * Q8_ROWS, false);
  } else {
    b -= b1;
    q8_gemv_block(y2, q2, s2, x, in, out2, b * Q8_ROWS, false);
  }
}

// One token's SwiGLU MLP first half (as gemv_swiglu_bf16): y = silu(Wg x) * (Wu x), a block taking
// Q8_ROWS rows of each weight.
extern "C" __global__ void Q8_BOUNDS gemv_swiglu_q8_0(
    float* y, const int8_t* qg, const __half* sg, const int8_t* qu, const __half* su, const float* x, int in,
    int out) {
  __shared__ float g[Q8_ROWS], u[Q8_ROWS];
  int row0 = blockIdx.x * Q8_ROWS;
  q8_block_dots(qg, sg, x, in, out, row0, g);
  q8_block_dots(qu, su, x, in, out, row0, u);
  store_swiglu_rows(y, g, u, row0, out);
}

extern "C" __global__ void q8_0_to_bf16(__nv_bfloat16* dst, const int8_t* qs, const __half* scales, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16_rn((float)qs[i] * __half2float(scales[i / Q8_BLOCK]));
}

extern "C" __global__ void embed_q8_0(float* out, const int8_t* qs, const __half* scales, const int* tokens, int token, int cols) {
  size_t row = (size_t)embed_token(tokens, token) * cols;
  float* o = out + (size_t)blockIdx.x * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) o[i] = (float)qs[row + i] * __half2float(scales[(row + i) / Q8_BLOCK]);
}
