// The kernel benchmarks' CUDA error check: any failed runtime call ends the run with its place and error.
#pragma once
#include <cstdio>
#include <cstdlib>

#define CHECK(x)                                                                              \
  do {                                                                                        \
    cudaError_t err_ = (x);                                                                   \
    if (err_ != cudaSuccess) {                                                                \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(err_));   \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)
