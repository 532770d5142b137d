// GGUF's Q4_K weights kept quantized on the GPU. A super-block of 256 elements is 144 bytes: fp16 d and
// dmin, 12 bytes packing eight 6-bit scales and eight 6-bit mins (one each per 32 elements), then 128
// bytes of 4-bit quants q, weight d·scale·q − dmin·min. ggml packs the quants by 64 elements: bytes
// 32g..32g+31 hold elements 64g..64g+31 in their low nibbles (sub-block 2g) and 64g+32.. in their high
// ones (sub-block 2g + 1). Stored split as Q4_0 is (CudaWeight.scales): the 128 quant bytes of every
// super-block in the file's order, [rows][cols / 2], then each super-block's first 16 bytes (d, dmin
// and the 12 packed bytes), [rows][cols / 256][16]. q4_k_unpack splits the file's blocks at load;
// gemv_q4_k_1 is the decode product (0.5625 bytes a weight where bf16 reads 2), gemv3_q4_k and
// gemv_swiglu_q4_k the fused q/k/v and gate/up ones; q4_k_to_bf16 dequantizes a matrix for a prefill
// GEMM (cuBLAS); embed_q4_k gathers token rows.
#include <cuda_fp16.h>
#include "common.cuh"

#define QK_K 256
#define Q4K_BLOCK_BYTES 144
#define Q4K_META 16
#define Q4K_ROWS 4
#define Q4K_WARPS 4
// On Hopper, five blocks a multiprocessor (96 registers a thread; the q/k/v and gate/up kernels spill
// 12-32 bytes): the compiler's 122-126 registers fitted four, and five took Llama-3-8B's decode at 4K
// from 4.33-4.43 to 4.15-4.19 ms on an H100.
#define Q4K_BOUNDS HOPPER_BOUNDS(Q4K_WARPS * 32, 5)

extern "C" __global__ void q4_k_unpack(uint8_t* qs, uint8_t* meta, const unsigned char* blocks, long long count) {
  for (long long b = blockIdx.x * (long long)blockDim.x + threadIdx.x; b < count;
       b += (long long)gridDim.x * blockDim.x) {
    const uint4* src = reinterpret_cast<const uint4*>(blocks + Q4K_BLOCK_BYTES * b);  // 144 = 9 x 16 bytes
    reinterpret_cast<uint4*>(meta)[b] = src[0];
    uint4* q = reinterpret_cast<uint4*>(qs + (QK_K / 2) * b);
#pragma unroll
    for (int j = 0; j < 8; j++) q[j] = src[1 + j];
  }
}

// Sub-block j's 6-bit scale and min from the 12 packed bytes (ggml's get_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(const uint8_t* s, int j, float* scale, float* min) {
  if (j < 4) {
    *scale = (float)(s[j] & 63);
    *min = (float)(s[j + 4] & 63);
  } else {
    *scale = (float)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *min = (float)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// The four 4-bit values in the low nibbles of a word's bytes (the high nibbles cleared) as floats: each
// byte becomes the low mantissa byte of 2^23 (one byte permute), and 2^23 is subtracted.
__device__ __forceinline__ float4 u4x4_to_float(unsigned nibbles) {
  const float bias = 8388608.f;  // 2^23
  return make_float4(__uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7440)) - bias,
                     __uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7441)) - bias,
                     __uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7442)) - bias,
                     __uint_as_float(__byte_perm(nibbles, 0x4B000000u, 0x7443)) - bias);
}

// Byte i (0..11) of the packed scales and mins held in words y, z, w of a super-block's 16 meta bytes.
__device__ __forceinline__ uint8_t packed_byte(uint4 m, int i) {
  unsigned word = i < 4 ? m.y : i < 8 ? m.z : m.w;
  return (uint8_t)(word >> (8 * (i & 3)));
}

// scale_min_k4 from the meta bytes in registers.
__device__ __forceinline__ void scale_min_k4(uint4 m, int j, float* scale, float* min) {
  if (j < 4) {
    *scale = (float)(packed_byte(m, j) & 63);
    *min = (float)(packed_byte(m, j + 4) & 63);
  } else {
    *scale = (float)((packed_byte(m, j + 4) & 0xF) | ((packed_byte(m, j - 4) >> 6) << 4));
    *min = (float)((packed_byte(m, j + 4) >> 4) | ((packed_byte(m, j) >> 6) << 4));
  }
}

__device__ __forceinline__ float dot4k(float4 q, float4 a) { return q.x * a.x + q.y * a.y + q.z * a.z + q.w * a.w; }
__device__ __forceinline__ float sum4k(float4 a) { return a.x + a.y + a.z + a.w; }

// The dot products of Q4K_ROWS weight rows row0.. with one activation row, into sums[w]: lane v of the
// block's warps takes 16 quant bytes (half h = v % 2 of the 64-element group g = v / 2 % 4 of super-block
// v / 8): elements 64g + 16h.. in the low nibbles (sub-block 2g) and 64g + 32 + 16h.. in the high ones
// (sub-block 2g + 1), for each row; the rows share the activation loads and their sums (the mins'
// terms), and the warps' sums meet in shared memory. The rows' scales are loaded with their quants,
// not after the activations (12 % off Llama-3-8B's decode on an H100). Four warps take a 4096-wide row's 128 pieces in one
// round (eight warps left half of them idle and reached ~0.9 TB/s on an H100). in % 256 == 0.
__device__ __forceinline__ void q4k_block_dots(const uint8_t* qs, const uint8_t* meta, const float* x, int in, int out,
                                               int row0, float (&sums)[Q4K_ROWS]) {
  constexpr int W = Q4K_ROWS;
  __shared__ float partial[Q4K_WARPS][W];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float acc[W];
#pragma unroll
  for (int w = 0; w < W; w++) acc[w] = 0.f;
  int pieces = in >> 5, supers = in / QK_K;
#pragma unroll 1
  for (int v = warp * 32 + lane; v < pieces; v += 32 * Q4K_WARPS) {
    int sb = v >> 3, g = (v >> 1) & 3, h = v & 1;
    uint4 p[W], m[W];  // the rows' quants and their super-block's scales, loaded together
#pragma unroll
    for (int w = 0; w < W; w++) {
      size_t row = min(row0 + w, out - 1);  // past the last row: repeat it, the sums are not written
      p[w] = __ldcs(reinterpret_cast<const uint4*>(qs + row * (in / 2)) + v);
      m[w] = *(reinterpret_cast<const uint4*>(meta) + row * (size_t)supers + sb);
    }
    const float4* lo = reinterpret_cast<const float4*>(x + sb * QK_K + 64 * g + 16 * h);
    const float4* hi = lo + 8;  // 32 elements on
    float4 a[4] = {lo[0], lo[1], lo[2], lo[3]}, b[4] = {hi[0], hi[1], hi[2], hi[3]};
    float sum_a = sum4k(a[0]) + sum4k(a[1]) + sum4k(a[2]) + sum4k(a[3]);
    float sum_b = sum4k(b[0]) + sum4k(b[1]) + sum4k(b[2]) + sum4k(b[3]);
#pragma unroll
    for (int w = 0; w < W; w++) {
      float d = __half2float(__ushort_as_half((unsigned short)(m[w].x & 0xFFFF)));
      float dmin = __half2float(__ushort_as_half((unsigned short)(m[w].x >> 16)));
      float sc_a, mn_a, sc_b, mn_b;
      scale_min_k4(m[w], 2 * g, &sc_a, &mn_a);
      scale_min_k4(m[w], 2 * g + 1, &sc_b, &mn_b);
      uint4 q = p[w];
      float dot_a = dot4k(u4x4_to_float(q.x & 0x0F0F0F0Fu), a[0]) + dot4k(u4x4_to_float(q.y & 0x0F0F0F0Fu), a[1]) +
                    dot4k(u4x4_to_float(q.z & 0x0F0F0F0Fu), a[2]) + dot4k(u4x4_to_float(q.w & 0x0F0F0F0Fu), a[3]);
      float dot_b = dot4k(u4x4_to_float((q.x >> 4) & 0x0F0F0F0Fu), b[0]) +
                    dot4k(u4x4_to_float((q.y >> 4) & 0x0F0F0F0Fu), b[1]) +
                    dot4k(u4x4_to_float((q.z >> 4) & 0x0F0F0F0Fu), b[2]) +
                    dot4k(u4x4_to_float((q.w >> 4) & 0x0F0F0F0Fu), b[3]);
      acc[w] += d * (sc_a * dot_a + sc_b * dot_b) - dmin * (mn_a * sum_a + mn_b * sum_b);
    }
  }
  block_row_sums(acc, partial, sums);
}

__device__ __forceinline__ void q4k_gemv_block(float* y, const uint8_t* qs, const uint8_t* meta, const float* x, int in,
                                               int out, int row0, bool accumulate) {
  __shared__ float sums[Q4K_ROWS];
  q4k_block_dots(qs, meta, x, in, out, row0, sums);
  if (threadIdx.x < Q4K_ROWS && row0 + threadIdx.x < out) {
    float* at = y + row0 + threadIdx.x;
    *at = accumulate ? *at + sums[threadIdx.x] : sums[threadIdx.x];
  }
}

// y = W x for one activation row; with `accumulate` the product is added to y. The host launches
// ceil(out / Q4K_ROWS) blocks of Q4K_WARPS warps.
extern "C" __global__ void Q4K_BOUNDS gemv_q4_k_1(
    float* y, const uint8_t* qs, const uint8_t* meta, const float* x, int in, int out, int accumulate) {
  q4k_gemv_block(y, qs, meta, x, in, out, blockIdx.x * Q4K_ROWS, accumulate != 0);
}

// One token's q, k and v in one launch (as gemv3_bf16): blocks [0, b0) take W0's rows, the next b1
// W1's, then W2's, b_i = ceil(out_i / Q4K_ROWS).
extern "C" __global__ void Q4K_BOUNDS gemv3_q4_k(
    float* y0, float* y1, float* y2, const uint8_t* q0, const uint8_t* q1, const uint8_t* q2, const uint8_t* m0,
    const uint8_t* m1, const uint8_t* m2, const float* x, int in, int out0, int out1, int out2) {
  int b = blockIdx.x, b0 = (out0 + Q4K_ROWS - 1) / Q4K_ROWS, b1 = (out1 + Q4K_ROWS - 1) / Q4K_ROWS;
  if (b < b0) {
    q4k_gemv_block(y0, q0, m0, x, in, out0, b * Q4K_ROWS, false);
  } else if ((b -= b0) < b1) {
    q4k_gemv_block(y1, q1, m1, x, in, out1, b * Q4K_ROWS, false);
  } else {
    q4k_gemv_block(y2, q2, m2, x, in, out2, (b - b1) * Q4K_ROWS, false);
  }
}

// One token's SwiGLU MLP first half (as gemv_swiglu_bf16): y = silu(Wg x) * (Wu x), a block taking
// Q4K_ROWS rows of each weight.
extern "C" __global__ void Q4K_BOUNDS gemv_swiglu_q4_k(
    float* y, const uint8_t* qg, const uint8_t* mg, const uint8_t* qu, const uint8_t* mu, const float* x, int in,
    int out) {
  __shared__ float g[Q4K_ROWS], u[Q4K_ROWS];
  int row0 = blockIdx.x * Q4K_ROWS;
  q4k_block_dots(qg, mg, x, in, out, row0, g);
  q4k_block_dots(qu, mu, x, in, out, row0, u);
  store_swiglu_rows(y, g, u, row0, out);
}

// Element i of a Q4_K matrix (row-major, rows of whole super-blocks).
__device__ __forceinline__ float q4_k_at(const uint8_t* qs, const uint8_t* meta, long long i) {
  long long sb = i / QK_K;
  int j = (int)(i % QK_K), g = j / 64, l = j % 64, sub = 2 * g + (l >= 32);
  uint8_t byte = qs[sb * (QK_K / 2) + 32 * g + (l & 31)];
  int q = l < 32 ? (byte & 15) : (byte >> 4);
  const uint8_t* m = meta + Q4K_META * sb;
  float scale, min;
  scale_min_k4(m + 4, sub, &scale, &min);
  return __half2float(*reinterpret_cast<const __half*>(m)) * scale * q -
         __half2float(*reinterpret_cast<const __half*>(m + 2)) * min;
}

extern "C" __global__ void q4_k_to_bf16(__nv_bfloat16* dst, const uint8_t* qs, const uint8_t* meta, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16_rn(q4_k_at(qs, meta, i));
}

extern "C" __global__ void embed_q4_k(float* out, const uint8_t* qs, const uint8_t* meta, const int* tokens, int token, int cols) {
  long long row = (long long)embed_token(tokens, token) * cols;
  float* o = out + (size_t)blockIdx.x * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) o[i] = q4_k_at(qs, meta, row + i);
}
