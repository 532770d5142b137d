// fp32 -> bf16 (round to nearest even): activations before a bf16 GEMM, weights at load. Four elements
// a thread (one 16-byte load, one 8-byte store) where both ends are aligned for it: a GEMM input is
// bound by memory, and scalar accesses reached about 40 % of the bandwidth.
#include "common.cuh"

extern "C" __global__ void f32_to_bf16(__nv_bfloat16* dst, const float* src, long long n) {
  long long first = blockIdx.x * (long long)blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long quads = ((uintptr_t)dst % 8 == 0 && (uintptr_t)src % 16 == 0) ? n / 4 : 0;
  for (long long i = first; i < quads; i += stride) {
    float4 v = reinterpret_cast<const float4*>(src)[i];
    __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
    reinterpret_cast<uint2*>(dst)[i] = make_uint2(*reinterpret_cast<unsigned*>(&a), *reinterpret_cast<unsigned*>(&b));
  }
  for (long long i = 4 * quads + first; i < n; i += stride) dst[i] = __float2bfloat16_rn(src[i]);
}
