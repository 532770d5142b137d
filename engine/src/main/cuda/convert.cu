// fp32 -> bf16 (round to nearest even): activations before a bf16 GEMM, weights at load.
#include "common.cuh"

extern "C" __global__ void f32_to_bf16(__nv_bfloat16* dst, const float* src, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}
