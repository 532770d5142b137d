// RMSNorm of each row: out = x / sqrt(mean(x^2) + eps) * gamma, one block per row, fp32 throughout.
//
// A decode step normalises one row between two bandwidth-bound GEMVs, so the row's latency is what
// counts: each thread loads its float4s of the row and of gamma at once and keeps them in registers for
// the output (rows up to NORM_VECTORS float4s a thread), so the row is read once with every load in
// flight, and the output waits for no load after the reduction.
// out may alias x: a thread writes only the elements it read, after the reduction. With out16 (a
// prefill's input to bf16 GEMMs) the output is also written rounded to bf16 there, which spares the
// GEMMs a conversion pass over it; out may then be null (a prefill's MLP block reads the bf16 alone).
#include "common.cuh"

#define NORM_VECTORS 4

extern "C" __global__ void __launch_bounds__(1024) rms_norm(float* out, __nv_bfloat16* out16, const float* x,
                                                           const float* gamma, int cols, float eps) {
  const float* xr = x + (size_t)blockIdx.x * cols;
  float* o = out ? out + (size_t)blockIdx.x * cols : nullptr;
  __shared__ float partial[32];
  __nv_bfloat16* o16 = out16 ? out16 + (size_t)blockIdx.x * cols : nullptr;
  bool vec = (cols & 3) == 0 && (((uintptr_t)xr | (uintptr_t)o | (uintptr_t)gamma) & 15) == 0 && ((uintptr_t)o16 & 7) == 0;
  int n4 = vec ? cols >> 2 : 0;
  const float4* x4 = reinterpret_cast<const float4*>(xr);
  const float4* g4 = reinterpret_cast<const float4*>(gamma);
  float4 v[NORM_VECTORS], g[NORM_VECTORS];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < NORM_VECTORS; k++) {
    int i = threadIdx.x + k * blockDim.x;
    if (i < n4) {
      v[k] = x4[i];
      g[k] = g4[i];
      ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    }
  }
  for (int i = threadIdx.x + NORM_VECTORS * blockDim.x; i < n4; i += blockDim.x) {
    float4 a = x4[i];
    ss += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
  }
  for (int i = 4 * n4 + threadIdx.x; i < cols; i += blockDim.x) ss += xr[i] * xr[i];  // rows not in float4s

  ss = warp_sum(ss);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  if (lane == 0) partial[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    ss = lane < warps ? partial[lane] : 0.f;
    ss = warp_sum(ss);
    if (lane == 0) partial[0] = ss;
  }
  __syncthreads();
  float inv = 1.0f / sqrtf(partial[0] / cols + eps);

  float4* o4 = reinterpret_cast<float4*>(o);
#pragma unroll
  for (int k = 0; k < NORM_VECTORS; k++) {
    int i = threadIdx.x + k * blockDim.x;
    if (i < n4) {
      store4(o4, o16, i, make_float4(g[k].x * (v[k].x * inv), g[k].y * (v[k].y * inv), g[k].z * (v[k].z * inv),
                                     g[k].w * (v[k].w * inv)));
    }
  }
  for (int i = threadIdx.x + NORM_VECTORS * blockDim.x; i < n4; i += blockDim.x) {
    float4 a = x4[i], b = g4[i];
    store4(o4, o16, i, make_float4(b.x * (a.x * inv), b.y * (a.y * inv), b.z * (a.z * inv), b.w * (a.w * inv)));
  }
  for (int i = 4 * n4 + threadIdx.x; i < cols; i += blockDim.x) {
    float y = gamma[i] * (xr[i] * inv);
    if (o) o[i] = y;
    if (o16) o16[i] = __float2bfloat16_rn(y);
  }
}
