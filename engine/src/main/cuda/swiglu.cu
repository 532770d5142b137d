// SwiGLU activation: gate = silu(gate) * up, elementwise over the first n elements, four a thread where
// both arrays are 16-byte aligned (a prefill's 4096 x 14336 elements are bound by memory). With gate16
// (a prefill, whose down projection is a bf16 GEMM) the result is also written rounded to bf16 there.
// swiglu_bf16 does it on bf16 gate and up products (a prefill's MLP block, whose GEMMs write bf16),
// eight a thread, in place: a third of the fp32 kernel's bytes.
#include "common.cuh"

__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }

extern "C" __global__ void swiglu(float* gate, __nv_bfloat16* gate16, const float* up, long long n) {
  long long first = blockIdx.x * (long long)blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long quads = ((uintptr_t)gate % 16 == 0 && (uintptr_t)up % 16 == 0 && (uintptr_t)gate16 % 8 == 0) ? n / 4 : 0;
  for (long long i = first; i < quads; i += stride) {
    float4 g = reinterpret_cast<float4*>(gate)[i];
    float4 u = reinterpret_cast<const float4*>(up)[i];
    store4(reinterpret_cast<float4*>(gate), gate16, i,
           make_float4(silu_times(g.x, u.x), silu_times(g.y, u.y), silu_times(g.z, u.z), silu_times(g.w, u.w)));
  }
  for (long long i = 4 * quads + first; i < n; i += stride) {
    gate[i] = silu_times(gate[i], up[i]);
    if (gate16) gate16[i] = __float2bfloat16_rn(gate[i]);
  }
}

extern "C" __global__ void swiglu_bf16(__nv_bfloat16* gate, const __nv_bfloat16* up, long long n) {
  long long first = blockIdx.x * (long long)blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long octets = ((uintptr_t)gate % 16 == 0 && (uintptr_t)up % 16 == 0) ? n / 8 : 0;
  for (long long i = first; i < octets; i += stride) {
    uint4 g = reinterpret_cast<uint4*>(gate)[i], u = reinterpret_cast<const uint4*>(up)[i];
    __nv_bfloat162* gh = reinterpret_cast<__nv_bfloat162*>(&g);
    const __nv_bfloat162* uh = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      float2 a = __bfloat1622float2(gh[j]), b = __bfloat1622float2(uh[j]);
      gh[j] = __floats2bfloat162_rn(silu_times(a.x, b.x), silu_times(a.y, b.y));
    }
    reinterpret_cast<uint4*>(gate)[i] = g;
  }
  for (long long i = 8 * octets + first; i < n; i += stride)
    gate[i] = __float2bfloat16_rn(silu_times(__bfloat162float(gate[i]), __bfloat162float(up[i])));
}
