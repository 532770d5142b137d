// RMSNorm of each row: out = x / sqrt(mean(x^2) + eps) * gamma, one block per row, fp32 throughout.
// out may alias x: every element is read in the reduction before any is written.
#include "common.cuh"

extern "C" __global__ void rms_norm(float* out, const float* x, const float* gamma, int cols, float eps) {
  const float* xr = x + (size_t)blockIdx.x * cols;
  float* o = out + (size_t)blockIdx.x * cols;
  __shared__ float partial[32];
  float ss = 0.f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) ss += xr[i] * xr[i];
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
  for (int i = threadIdx.x; i < cols; i += blockDim.x) o[i] = gamma[i] * (xr[i] * inv);
}
