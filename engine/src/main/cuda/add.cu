// Residual add over a contiguous range: x += delta.
extern "C" __global__ void add_inplace(float* x, const float* delta, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    x[i] += delta[i];
}
