// Checks the one-token attention kernel (attention_decode.cu, bf16 pages, head width 128, a GQA group of
// 4) alone against a float64 reference: one KV head, T random keys and values at positions 0 .. T - 1
// in blocks of 64, the query at T - 1, its keys in 1 to 32 splits. With more than one split the kernel
// leaves partial results, which this check merges as attention_combine.cu does. Prints the largest
// difference per split count.
//
// Built on the GPU machine beside the sources:
//   nvcc -O3 -std=c++17 -arch=sm_90a -I engine/src/main/cuda -o /tmp/adc tools/kernel-bench/attention_decode_check.cu
//   /tmp/adc 4000
#include "attention_decode.cu"
#include <cstdio>
#include <cmath>
#include <vector>
#include <cstdlib>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); exit(1);} } while (0)
int main(int argc, char** argv) {
  const int T = argc > 1 ? atoi(argv[1]) : 1024, D = 128, G = 4, half = D / 2, BS = 64;
  const int pagesN = (T + KV_PAGE - 1) / KV_PAGE;
  size_t value_offset = (size_t)KV_PAGE * D * 2;  // bf16 keys of 1 layer, 1 head
  std::vector<float> K(T * D), V(T * D), Q(G * D);
  srand(1);
  auto rnd = [] { return (rand() / (float)RAND_MAX) * 2 - 1; };
  for (auto& x : K) x = __bfloat162float(__float2bfloat16(rnd()));
  for (auto& x : V) x = __bfloat162float(__float2bfloat16(rnd()));
  for (auto& x : Q) x = rnd();
  std::vector<long long> pagePtrs(pagesN);
  for (int p = 0; p < pagesN; p++) {
    std::vector<__nv_bfloat16> page(2 * KV_PAGE * D);
    for (int s = 0; s < KV_PAGE; s++) for (int d = 0; d < D; d++) {
      int t = p * KV_PAGE + s;
      page[s * D + d] = __float2bfloat16(t < T ? K[t * D + d] : 0.f);
      page[KV_PAGE * D + s * D + d] = __float2bfloat16(t < T ? V[t * D + d] : 0.f);
    }
    void* dp; CK(cudaMalloc(&dp, page.size() * 2)); CK(cudaMemcpy(dp, page.data(), page.size() * 2, cudaMemcpyHostToDevice));
    pagePtrs[p] = (long long)dp;
  }
  int hiN = T / 1024 + 2;
  std::vector<float> loc(1024 * half), los(1024 * half), hic(hiN * half), his(hiN * half);
  for (int i = 0; i < half; i++) {
    double th = pow(10000.0, -2.0 * i / D);
    for (int p = 0; p < 1024; p++) { loc[p * half + i] = cos(p * th); los[p * half + i] = sin(p * th); }
    for (int p = 0; p < hiN; p++) { hic[p * half + i] = cos(p * 1024.0 * th); his[p * half + i] = sin(p * 1024.0 * th); }
  }
  int nb = (T + BS - 1) / BS;
  std::vector<int> items = {0, T - 1, 1, 0, G}, offsets = {0, nb}, blocks(nb), positions(nb), shift = {0};
  for (int b = 0; b < nb; b++) { blocks[b] = b; positions[b] = b * BS; }
  auto up = [](const void* h, size_t bytes) { void* d; CK(cudaMalloc(&d, bytes)); CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice)); return d; };
  long long* dPages = (long long*)up(pagePtrs.data(), pagesN * 8);
  float* dQ = (float*)up(Q.data(), Q.size() * 4);
  int *dItems = (int*)up(items.data(), 20), *dOff = (int*)up(offsets.data(), 8), *dBlk = (int*)up(blocks.data(), nb * 4),
      *dPos = (int*)up(positions.data(), nb * 4), *dShift = (int*)up(shift.data(), 4);
  float *dloc = (float*)up(loc.data(), loc.size() * 4), *dlos = (float*)up(los.data(), los.size() * 4),
        *dhic = (float*)up(hic.data(), hic.size() * 4), *dhis = (float*)up(his.data(), his.size() * 4);
  float *dOut, *dPart;
  CK(cudaMalloc(&dOut, G * D * 4));
  CK(cudaMalloc(&dPart, 1 << 24));
  // CPU reference
  std::vector<double> ref(G * D, 0.0);
  for (int h = 0; h < G; h++) {
    std::vector<double> qr(D), sc(T);
    int qp = T - 1;
    for (int i = 0; i < half; i++) {
      double th = pow(10000.0, -2.0 * i / D), c = cos(qp * th), s = sin(qp * th);
      qr[i] = Q[h * D + i] * c - Q[h * D + i + half] * s; qr[i + half] = Q[h * D + i + half] * c + Q[h * D + i] * s;
    }
    double mx = -1e30;
    for (int t = 0; t < T; t++) {
      double dot = 0;
      for (int i = 0; i < half; i++) {
        double th = pow(10000.0, -2.0 * i / D), c = cos(t * th), s = sin(t * th);
        double k0 = K[t * D + i] * c - K[t * D + i + half] * s, k1 = K[t * D + i + half] * c + K[t * D + i] * s;
        dot += qr[i] * k0 + qr[i + half] * k1;
      }
      sc[t] = dot / sqrt((double)D); mx = fmax(mx, sc[t]);
    }
    double L = 0;
    for (int t = 0; t < T; t++) { sc[t] = exp(sc[t] - mx); L += sc[t]; }
    for (int t = 0; t < T; t++) for (int d = 0; d < D; d++) ref[h * D + d] += sc[t] * V[t * D + d] / L;
  }
  int chunks = (nb * BS) / ATT_KEYS;
  for (int S : {1, 2, 4, 8, 16, 32}) {
    int cps = (chunks + S - 1) / S, splits = (chunks + cps - 1) / cps;
    float *partO = dPart, *partMl = dPart + (size_t)splits * ATT_ROWS * D;
    CK(cudaMemset(dOut, 0, G * D * 4));
    attention_decode_bf16_d128_g4<<<dim3(1, splits), 128>>>(dOut, dQ, G * D, T - 1, dPages, value_offset, 0, 1, D, G,
        dItems, dOff, dBlk, dPos, dShift, BS, T, 0, dloc, dlos, dhic, dhis, 1.f, 0, 1.f / sqrtf(D), cps,
        splits > 1 ? partO : nullptr, splits > 1 ? partMl : nullptr);
    CK(cudaDeviceSynchronize());
    std::vector<float> out(G * D);
    if (splits == 1) {
      CK(cudaMemcpy(out.data(), dOut, G * D * 4, cudaMemcpyDeviceToHost));
    } else {  // attention_combine's merge: sum(o_s e^(m_s - M)) / sum(l_s e^(m_s - M))
      std::vector<float> po((size_t)splits * ATT_ROWS * D), pml((size_t)splits * ATT_ROWS * 2);
      CK(cudaMemcpy(po.data(), partO, po.size() * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(pml.data(), partMl, pml.size() * 4, cudaMemcpyDeviceToHost));
      for (int h = 0; h < G; h++) {
        double M = -INFINITY, L = 0;
        for (int sp = 0; sp < splits; sp++) M = fmax(M, pml[2 * (sp * ATT_ROWS + h)]);
        std::vector<double> o(D, 0.0);
        for (int sp = 0; sp < splits; sp++) {
          double m = pml[2 * (sp * ATT_ROWS + h)], w = m == -INFINITY ? 0 : exp(m - M);
          L += w * pml[2 * (sp * ATT_ROWS + h) + 1];
          for (int d = 0; d < D; d++) o[d] += w * po[(sp * ATT_ROWS + h) * (size_t)D + d];
        }
        for (int d = 0; d < D; d++) out[h * D + d] = (float)(o[d] / L);
      }
    }
    double worst = 0;
    for (int i = 0; i < G * D; i++) worst = fmax(worst, fabs(out[i] - ref[i]));
    printf("T=%d splits=%d: largest |gpu - float64| %.3e\n", T, splits, worst);
  }
  return 0;
}
