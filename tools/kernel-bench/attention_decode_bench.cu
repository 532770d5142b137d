// Times and checks the one-token attention kernel (attention_decode.cu, bf16 pages, head width 128, GQA
// groups of 4) on Llama-3-8B's shapes: 8 KV heads, T keys at positions 0 .. T - 1 in plan blocks of 64, the
// query at T - 1, the keys of each head in S splits merged by attention_combine.cu, launched back to back
// on 32 layers of pages in turn (as a decode step's layers follow each other, and so that the keys are not
// all in L2). Prints, per split count, the time per layer (both kernels) and the largest difference from a
// float64 reference on layer 0.
//
// Built on the GPU machine beside the sources:
//   nvcc -O3 -std=c++17 -arch=sm_90a -I engine/src/main/cuda -o /tmp/adb tools/kernel-bench/attention_decode_bench.cu
//   /tmp/adb 4096
#include "attention_combine.cu"
#include "attention_decode.cu"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>
#define CK(x)                                                           \
  do {                                                                  \
    cudaError_t e = (x);                                                \
    if (e != cudaSuccess) {                                             \
      printf("%s: %s\n", #x, cudaGetErrorString(e));                    \
      exit(1);                                                          \
    }                                                                   \
  } while (0)

__global__ void fill_bf16(__nv_bfloat16* p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
    p[i] = __float2bfloat16((h & 0xffff) / 32768.f - 1.f);
  }
}

int main(int argc, char** argv) {
  const int T = argc > 1 ? atoi(argv[1]) : 4096, H = 8, D = 128, G = 4, L = 32, BS = 64, half = D / 2;
  const int pagesN = (T + KV_PAGE - 1) / KV_PAGE;
  const size_t keysBytes = (size_t)L * H * KV_PAGE * D * 2;  // a page's keys: [layer][head][slot][dim]
  std::vector<long long> pagePtrs(pagesN);
  for (int p = 0; p < pagesN; p++) {
    void* dp;
    CK(cudaMalloc(&dp, 2 * keysBytes));
    fill_bf16<<<1024, 256>>>((__nv_bfloat16*)dp, keysBytes, 17u * p + 1);
    pagePtrs[p] = (long long)dp;
  }
  // Layer 0's keys and values of every head, for the reference.
  std::vector<__nv_bfloat16> hk((size_t)H * T * D), hv((size_t)H * T * D);
  for (int p = 0; p < pagesN; p++)
    for (int h = 0; h < H; h++) {
      int n = std::min(KV_PAGE, T - p * KV_PAGE);
      size_t row = (size_t)h * KV_PAGE * D * 2;
      CK(cudaMemcpy(&hk[((size_t)h * T + p * KV_PAGE) * D], (char*)pagePtrs[p] + row, n * D * 2, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(&hv[((size_t)h * T + p * KV_PAGE) * D], (char*)pagePtrs[p] + keysBytes + row, n * D * 2,
                    cudaMemcpyDeviceToHost));
    }
  std::vector<float> Q(H * G * D);
  srand(1);
  for (auto& x : Q) x = (rand() / (float)RAND_MAX) * 2 - 1;

  int hiN = T / 1024 + 2;
  std::vector<float> loc(1024 * half), los(1024 * half), hic(hiN * half), his(hiN * half);
  for (int i = 0; i < half; i++) {
    double th = pow(10000.0, -2.0 * i / D);
    for (int p = 0; p < 1024; p++) loc[p * half + i] = cos(p * th), los[p * half + i] = sin(p * th);
    for (int p = 0; p < hiN; p++) hic[p * half + i] = cos(p * 1024.0 * th), his[p * half + i] = sin(p * 1024.0 * th);
  }
  // The plan: one entry and one work item per KV head, each entry every block of keys.
  int nb = (T + BS - 1) / BS;
  std::vector<int> items, offsets, blocks, positions, shift(H, 0);
  for (int h = 0; h < H; h++) {
    items.insert(items.end(), {h, T - 1, 1, 0, G});
    offsets.push_back(h * nb);
    for (int b = 0; b < nb; b++) blocks.push_back(b), positions.push_back(b * BS);
  }
  offsets.push_back(H * nb);
  auto up = [](const void* h, size_t bytes) {
    void* d;
    CK(cudaMalloc(&d, bytes));
    CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
  };
  long long* dPages = (long long*)up(pagePtrs.data(), pagesN * 8);
  float* dQ = (float*)up(Q.data(), Q.size() * 4);
  int *dItems = (int*)up(items.data(), items.size() * 4), *dOff = (int*)up(offsets.data(), offsets.size() * 4),
      *dBlk = (int*)up(blocks.data(), blocks.size() * 4), *dPos = (int*)up(positions.data(), positions.size() * 4),
      *dShift = (int*)up(shift.data(), H * 4);
  float *dloc = (float*)up(loc.data(), loc.size() * 4), *dlos = (float*)up(los.data(), los.size() * 4),
        *dhic = (float*)up(hic.data(), hic.size() * 4), *dhis = (float*)up(his.data(), his.size() * 4);
  float *dOut, *dPart;
  CK(cudaMalloc(&dOut, H * G * D * 4));
  CK(cudaMalloc(&dPart, 1 << 26));

  // float64 reference of layer 0.
  std::vector<double> ref(H * G * D, 0.0), cs((size_t)T * half), sn((size_t)T * half);
  for (int t = 0; t < T; t++)
    for (int i = 0; i < half; i++) {
      double th = pow(10000.0, -2.0 * i / D);
      cs[(size_t)t * half + i] = cos(t * th), sn[(size_t)t * half + i] = sin(t * th);
    }
  for (int kh = 0; kh < H; kh++)
    for (int g = 0; g < G; g++) {
      const float* q = &Q[(kh * G + g) * D];
      std::vector<double> qr(D), sc(T);
      for (int i = 0; i < half; i++) {
        double c = cs[(size_t)(T - 1) * half + i], s = sn[(size_t)(T - 1) * half + i];
        qr[i] = q[i] * c - q[i + half] * s, qr[i + half] = q[i + half] * c + q[i] * s;
      }
      double mx = -1e300;
      for (int t = 0; t < T; t++) {
        const __nv_bfloat16* k = &hk[((size_t)kh * T + t) * D];
        double dot = 0;
        for (int i = 0; i < half; i++) {
          double c = cs[(size_t)t * half + i], s = sn[(size_t)t * half + i];
          double k0 = __bfloat162float(k[i]), k1 = __bfloat162float(k[i + half]);
          dot += qr[i] * (k0 * c - k1 * s) + qr[i + half] * (k1 * c + k0 * s);
        }
        sc[t] = dot / sqrt((double)D), mx = fmax(mx, sc[t]);
      }
      double sum = 0;
      for (int t = 0; t < T; t++) sc[t] = exp(sc[t] - mx), sum += sc[t];
      for (int t = 0; t < T; t++)
        for (int d = 0; d < D; d++) ref[(kh * G + g) * D + d] += sc[t] * __bfloat162float(hv[((size_t)kh * T + t) * D + d]) / sum;
    }

  int chunks = nb * BS / ATT_KEYS;
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  printf("T=%d, %d KV heads\n", T, H);
  for (int S : {1, 8, 16, 32, 64, 128}) {
    int cps = (chunks + S - 1) / S, splits = (chunks + cps - 1) / cps;
    float *partO = dPart, *partMl = dPart + (size_t)splits * H * ATT_ROWS * D;
    auto layer = [&](int l) {
      attention_decode_bf16_d128_g4<<<dim3(H, splits), DEC_WARPS * 32>>>(
          dOut, dQ, H * G * D, T - 1, dPages, keysBytes, l, H, D, G, dItems, dOff, dBlk, dPos, dShift, BS, T, 0, dloc,
          dlos, dhic, dhis, 1.f, 0, 1.f / sqrtf(D), cps, splits > 1 ? partO : nullptr, splits > 1 ? partMl : nullptr,
          nullptr, nullptr, 0, 0, -1);
      if (splits > 1)
        attention_combine<<<dim3(H, G), COMBINE_THREADS>>>(dOut, H * G * D, T - 1, H, D, G, dItems, splits, partO, partMl);
    };
    CK(cudaMemset(dOut, 0, H * G * D * 4));
    layer(0);
    CK(cudaDeviceSynchronize());
    std::vector<float> out(H * G * D);
    CK(cudaMemcpy(out.data(), dOut, out.size() * 4, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (int i = 0; i < H * G * D; i++) worst = fmax(worst, fabs(out[i] - ref[i]));
    const int N = 320;
    for (int i = 0; i < 32; i++) layer(i % L);
    CK(cudaEventRecord(e0));
    for (int i = 0; i < N; i++) layer(i % L);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    double us = 1000.0 * ms / N;
    printf("splits %3d (%3d keys each): %6.2f us a layer (%5.0f GB/s), largest |gpu - float64| %.2e\n", splits,
           cps * ATT_KEYS, us, 2.0 * H * T * D * 2 / us / 1e3, worst);
  }
  return 0;
}
