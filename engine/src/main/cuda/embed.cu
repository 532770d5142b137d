// Token embedding: out[t] = table[tokens[t]] as fp32 (tokens null: one token, `token`). Token ids were
// range-checked on the host.
#include "common.cuh"

template <typename T>
__device__ void embed_rows(float* out, const T* table, const int* tokens, int token, int cols) {
  const T* row = table + (size_t)embed_token(tokens, token) * cols;
  float* o = out + (size_t)blockIdx.x * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) o[i] = load_f(row, i);
}

extern "C" __global__ void embed_f32(float* out, const float* table, const int* tokens, int token, int cols) {
  embed_rows(out, table, tokens, token, cols);
}

extern "C" __global__ void embed_bf16(float* out, const __nv_bfloat16* table, const int* tokens, int token, int cols) {
  embed_rows(out, table, tokens, token, cols);
}
