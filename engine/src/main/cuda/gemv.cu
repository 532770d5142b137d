// Matrix-vector products for decode: y[r] = W x[r] for a few rows r (one token, or a few), W bf16
// [out][in] row-major, x and y fp32. At one token a linear layer reads every weight once and does two
// flops per weight, so it is bound by memory bandwidth: one warp streams one weight row in 16-byte
// loads (8 weights), marked evict-first so that they do not push the activations out of L2, and keeps
// up to GEMV_ROWS sums. Unlike the GEMM path the activations stay fp32 (no rounding to bf16).
// gemv_swiglu_bf16 does the SwiGLU MLP's gate and up products in the same pass and writes the
// activation; gemv3_bf16 does three products of one input (a layer's q, k and v) in one launch; with
// `accumulate`, gemv_bf16 adds its product to y (the residual stream) instead of writing it. Needs
// in % 8 == 0 and 16-byte aligned rows; the host falls back to cuBLAS otherwise.
#include "common.cuh"

#define GEMV_ROWS 4

// The dot products of one weight row with R activation rows, summed over the warp into every lane.
template <int R>
__device__ __forceinline__ void row_dots(const __nv_bfloat16* w, const float* x, int in, int row, int lane,
                                         float* acc) {
  const uint4* wr = reinterpret_cast<const uint4*>(w + (size_t)row * in);
  int vecs = in >> 3;
#pragma unroll
  for (int r = 0; r < R; r++) acc[r] = 0.f;
#pragma unroll 4
  for (int v = lane; v < vecs; v += 32) {
    uint4 p = __ldcs(wr + v);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&p);
    float2 w0 = __bfloat1622float2(h[0]), w1 = __bfloat1622float2(h[1]);
    float2 w2 = __bfloat1622float2(h[2]), w3 = __bfloat1622float2(h[3]);
#pragma unroll
    for (int r = 0; r < R; r++) {
      const float4* xr = reinterpret_cast<const float4*>(x + (size_t)r * in) + 2 * v;
      float4 a = xr[0], b = xr[1];
      acc[r] += w0.x * a.x + w0.y * a.y + w1.x * a.z + w1.y * a.w + w2.x * b.x + w2.y * b.y + w3.x * b.z + w3.y * b.w;
    }
  }
#pragma unroll
  for (int r = 0; r < R; r++) acc[r] = warp_sum(acc[r]);
}

// The SwiGLU MLP's first half for a few rows: y[r] = silu(Wg x[r]) * (Wu x[r]), both weights [out][in]
// bf16, one warp per output feature reading its row of each: both rows' loads are issued together, so
// that a warp has twice the bytes in flight of one row_dots.
template <int R>
__device__ __forceinline__ void swiglu_warp(float* y, const __nv_bfloat16* wg, const __nv_bfloat16* wu, const float* x,
                                            int in, int out, int row, int lane) {
  const uint4* gr = reinterpret_cast<const uint4*>(wg + (size_t)row * in);
  const uint4* ur = reinterpret_cast<const uint4*>(wu + (size_t)row * in);
  int vecs = in >> 3;
  float g[R], u[R];
#pragma unroll
  for (int r = 0; r < R; r++) g[r] = u[r] = 0.f;
#pragma unroll 4
  for (int v = lane; v < vecs; v += 32) {
    uint4 pg = __ldcs(gr + v), pu = __ldcs(ur + v);
    const __nv_bfloat162* hg = reinterpret_cast<const __nv_bfloat162*>(&pg);
    const __nv_bfloat162* hu = reinterpret_cast<const __nv_bfloat162*>(&pu);
#pragma unroll
    for (int r = 0; r < R; r++) {
      const float4* xr = reinterpret_cast<const float4*>(x + (size_t)r * in) + 2 * v;
      float4 a = xr[0], b = xr[1];
      float xs[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int j = 0; j < 4; j++) {
        float2 wgj = __bfloat1622float2(hg[j]), wuj = __bfloat1622float2(hu[j]);
        g[r] += wgj.x * xs[2 * j] + wgj.y * xs[2 * j + 1];
        u[r] += wuj.x * xs[2 * j] + wuj.y * xs[2 * j + 1];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; r++) {
    g[r] = warp_sum(g[r]);
    u[r] = warp_sum(u[r]);
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < R; r++) y[(size_t)r * out + row] = g[r] / (1.0f + expf(-g[r])) * u[r];
  }
}

extern "C" __global__ void gemv_swiglu_bf16(float* y, const __nv_bfloat16* wg, const __nv_bfloat16* wu, const float* x,
                                            int in, int out, int rows) {
  int row = (int)((blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
  if (row >= out) return;
  switch (rows) {
    case 1: swiglu_warp<1>(y, wg, wu, x, in, out, row, lane); break;
    case 2: swiglu_warp<2>(y, wg, wu, x, in, out, row, lane); break;
    case 3: swiglu_warp<3>(y, wg, wu, x, in, out, row, lane); break;
    default: swiglu_warp<GEMV_ROWS>(y, wg, wu, x, in, out, row, lane); break;
  }
}

template <int R>
__device__ __forceinline__ void gemv_warp(float* y, const __nv_bfloat16* w, const float* x, int in, int out, int row,
                                          int lane, bool accumulate) {
  float acc[R];
  row_dots<R>(w, x, in, row, lane, acc);
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < R; r++) y[(size_t)r * out + row] = accumulate ? y[(size_t)r * out + row] + acc[r] : acc[r];
  }
}

__device__ __forceinline__ void gemv_rows(float* y, const __nv_bfloat16* w, const float* x, int in, int out, int row,
                                          int lane, int rows, bool accumulate) {
  switch (rows) {
    case 1: gemv_warp<1>(y, w, x, in, out, row, lane, accumulate); break;
    case 2: gemv_warp<2>(y, w, x, in, out, row, lane, accumulate); break;
    case 3: gemv_warp<3>(y, w, x, in, out, row, lane, accumulate); break;
    default: gemv_warp<GEMV_ROWS>(y, w, x, in, out, row, lane, accumulate); break;
  }
}

// One warp per output feature; rows in [1, GEMV_ROWS].
extern "C" __global__ void gemv_bf16(float* y, const __nv_bfloat16* w, const float* x, int in, int out, int rows,
                                     int accumulate) {
  int row = (int)((blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
  if (row < out) gemv_rows(y, w, x, in, out, row, lane, rows, accumulate != 0);
}

// y0 = W0 x, y1 = W1 x, y2 = W2 x: warps [0, out0) take W0's rows, the next out1 W1's, then W2's.
extern "C" __global__ void gemv3_bf16(float* y0, float* y1, float* y2, const __nv_bfloat16* w0,
                                      const __nv_bfloat16* w1, const __nv_bfloat16* w2, const float* x, int in,
                                      int out0, int out1, int out2, int rows) {
  int row = (int)((blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
  float* y = y0;
  const __nv_bfloat16* w = w0;
  int out = out0;
  if (row >= out0) {  // one call site for the three matrices: one copy of the product's code
    row -= out0, y = y1, w = w1, out = out1;
    if (row >= out1) row -= out1, y = y2, w = w2, out = out2;
  }
  if (row < out) gemv_rows(y, w, x, in, out, row, lane, rows, false);
}
