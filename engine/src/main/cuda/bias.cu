// Bias add: x[t][c] += bias[c] for every row t (Qwen2's q/k/v projections).
extern "C" __global__ void add_bias(float* x, const float* bias, int cols, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    x[i] += bias[i % cols];
}
