// SwiGLU activation: gate = silu(gate) * up, elementwise over the first n elements, four a thread where
// both arrays are 16-byte aligned (a prefill's 4096 x 14336 elements are bound by memory). With gate16
// (a prefill, whose down projection is a bf16 GEMM) the result is also written rounded to bf16 there.
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
