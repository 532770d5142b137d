// A prototype of dense causal prefill attention on Hopper's warpgroup tensor-core instructions (wgmma),
// checked against a plain fp32 kernel: the first measure of what wgmma gives before the plan-driven
// engine kernel (engine/src/main/cuda/attention_wgmma.cu) was written on it, kept as the bar that kernel
// does not reach yet (H100, dense chunk of 4,096 at 28K: 431-469 TFLOP/s here with tiles of 64 keys and
// two blocks a multiprocessor, ~400 for the engine's, which walks a plan and reads paged values), and
// the place to try FlashAttention-3's steps first (attention_wgmma_pipelined: the overlap within a
// warpgroup, measured below the plain kernel with two blocks a multiprocessor).
//
// Shapes are Llama-3-8B's (32 query heads, 8 KV heads of width 128) for one layer's chunk of queries
// at the end of the keys, as the engine prefills: queries pre-rotated and pre-scaled by log2(e)/sqrt(d)
// (the engine rotates them into shared memory), keys pre-rotated (rope_keys.cu's `rotated`), values bf16.
// A block takes ROWS (token, head) rows of one KV head, tokens major and the GQA group's heads minor
// as the engine's work items are, split between WGS warpgroups of 64 rows each. Keys and values come
// in tiles of KT with cp.async into two stages laid out as wgmma's 128-byte-swizzled canonical layout:
// [D/64 atoms][rows][64 elements], 16-byte piece c of row r at piece c ^ (r % 8) of its 128-byte line.
// S = Q K^T takes Q and K from shared memory (both K-major); O += P V takes P from registers (the
// scores' accumulator layout is the A fragment layout, as in FlashAttention-2) and V from shared memory
// MN-major, transposed by the instruction.
//
//   nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -I engine/src/main/cuda -o /tmp/awp \
//     tools/kernel-bench/attention_wgmma_proto.cu
//   /tmp/awp out.json
#include <cuda_bf16.h>
#include <cstdint>
#include "common.cuh"
#include "tensor_core.cuh"
#include "wgmma.cuh"
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "check.cuh"

typedef __nv_bfloat16 bf16;
constexpr int D = 128, QH = 32, KVH = 8, GROUP = 4;

// The block's ROWS query rows (tokens from t0, the KV head's group minor) into a swizzled tile at q_tile
// (generic pointer); rows past the chunk's end are zero.
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_queries(unsigned char* q_tile, const bf16* q, int chunk_start, int key_length,
                                             int t0, int kvh) {
  for (int i = threadIdx.x; i < ROWS * (D / 8); i += THREADS) {
    int r = i / (D / 8), c = i % (D / 8);
    int tok = t0 + r / GROUP, h = kvh * GROUP + r % GROUP;
    bool ok = tok < key_length;
    copy16_async(q_tile + swizzled(r, c, ROWS), ok ? q + ((size_t)(tok - chunk_start) * QH + h) * D + c * 8 : q, ok);
  }
}

// Keys and values tile..tile + KT - 1 of KV head kvh into swizzled tiles (generic pointers); zero past the end.
template <int KT, int THREADS>
__device__ __forceinline__ void load_kv_tile(unsigned char* k_tile, unsigned char* v_tile, const bf16* k, const bf16* v,
                                             int tile, int key_length, int kvh) {
  for (int i = threadIdx.x; i < KT * (D / 8); i += THREADS) {
    int r = i / (D / 8), c = i % (D / 8), key = tile * KT + r;
    bool ok = key < key_length;
    size_t at = ((size_t)(ok ? key : 0) * KVH + kvh) * D + c * 8;
    copy16_async(k_tile + swizzled(r, c, KT), k + at, ok);
    copy16_async(v_tile + swizzled(r, c, KT), v + at, ok);
  }
}

// S = Q K^T for the warpgroup's 64 rows of Q and a tile of 64 keys (both K-major, swizzled), committed.
template <int ROWS>
__device__ __forceinline__ void score_tile(float (&d)[32], uint32_t qs, uint32_t k_tile, int wg) {
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    uint32_t qa = qs + (kk >> 2) * ROWS * 128 + wg * 64 * 128 + (kk & 3) * 32;
    uint32_t kb = k_tile + (kk >> 2) * 64 * 128 + (kk & 3) * 32;
    wgmma_ss_n64(d, wgmma_descriptor(qa, 16, 1024), wgmma_descriptor(kb, 16, 1024), kk > 0);
  }
  wgmma_commit();
}

// The online softmax of one 64-key tile of scores (s: this thread's two rows, keys from key0) into the
// running maxima m, sums l and output o, leaving P as the A fragments of the four 16-key products.
__device__ __forceinline__ void softmax_tile(float (&s)[32], int key0, int lane, int tok0, int tok1,
                                             int warp_first_tok, float& m0, float& m1, float& l0, float& l1,
                                             float (&o)[64], uint32_t (&p)[4][4]) {
  if (key0 + 63 > warp_first_tok) {  // some key of the tile is after some row's token: mask
#pragma unroll
    for (int i = 0; i < 32; i++) {
      int key = key0 + 8 * (i >> 2) + 2 * (lane & 3) + (i & 1);
      if (key > ((i & 2) ? tok1 : tok0)) s[i] = -INFINITY;
    }
  }
  float mx0 = m0, mx1 = m1;
#pragma unroll
  for (int i = 0; i < 32; i += 4) {
    mx0 = fmaxf(mx0, fmaxf(s[i], s[i + 1]));
    mx1 = fmaxf(mx1, fmaxf(s[i + 2], s[i + 3]));
  }
  mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
  mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
  mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
  mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
  float c0 = exp2_approx(m0 - mx0), c1 = exp2_approx(m1 - mx1);
  m0 = mx0, m1 = mx1;
  l0 *= c0, l1 *= c1;
#pragma unroll
  for (int i = 0; i < 64; i += 4) {
    o[i] *= c0, o[i + 1] *= c0, o[i + 2] *= c1, o[i + 3] *= c1;
  }
#pragma unroll
  for (int i = 0; i < 32; i += 4) {
    float p0 = exp2_approx(s[i] - m0), p1 = exp2_approx(s[i + 1] - m0);
    float p2 = exp2_approx(s[i + 2] - m1), p3 = exp2_approx(s[i + 3] - m1);
    l0 += p0 + p1, l1 += p2 + p3;
    int kk = i >> 3, half = (i >> 2) & 1;  // n8 tile i/4 is half `half` of key step kk
    p[kk][2 * half] = pack_bf16(p0, p1);
    p[kk][2 * half + 1] = pack_bf16(p2, p3);
  }
}

// This thread's two rows' outputs, o / l, to out [chunk][QH][D].
__device__ __forceinline__ void store_rows(float* out, int chunk_start, int kvh, int r0, int tok0, int tok1, int lane,
                                           float l0, float l1, const float (&o)[64]) {
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  float i0 = 1.f / l0, i1 = 1.f / l1;
  int h0 = kvh * GROUP + r0 % GROUP, h1 = kvh * GROUP + (r0 + 8) % GROUP;
  float* o0 = out + ((size_t)(tok0 - chunk_start) * QH + h0) * D;
  float* o1 = out + ((size_t)(tok1 - chunk_start) * QH + h1) * D;
#pragma unroll
  for (int i = 0; i < 64; i += 4) {
    int col = 8 * (i >> 2) + 2 * (lane & 3);
    *reinterpret_cast<float2*>(o0 + col) = make_float2(o[i] * i0, o[i + 1] * i0);
    *reinterpret_cast<float2*>(o1 + col) = make_float2(o[i + 2] * i1, o[i + 3] * i1);
  }
}

// grid (chunk * GROUP / ROWS, KVH); out [chunk][QH][D] fp32; q [chunk][QH][D]; k, v [key_length][KVH][D].
// V is read MN-major: its descriptor steps 64-wide atoms of dimensions by KT * 128 bytes and 8-key
// groups by 1,024 (the other assignment of the two strides was measured wrong: relative error ~1).
template <int KT, int WGS, int MIN_BLOCKS>
__global__ void __launch_bounds__(128 * WGS, MIN_BLOCKS)
attention_wgmma(float* out, const bf16* q, const bf16* k, const bf16* v, int chunk_start, int chunk) {
  static_assert(KT == 64, "score_tile and softmax_tile take tiles of 64 keys");
  constexpr int ROWS = 64 * WGS, THREADS = 128 * WGS, TOKENS = ROWS / GROUP, SN = KT / 2;
  constexpr uint32_t Q_BYTES = ROWS * D * 2, KV_BYTES = KT * D * 2;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  uint32_t raw = (uint32_t)__cvta_generic_to_shared(smem_raw), base = (raw + 1023) & ~1023u;
  auto generic = [&](uint32_t a) { return smem_raw + (a - raw); };  // the generic pointer of a shared address
  uint32_t qs = base, ks = qs + Q_BYTES, vs = ks + 2 * KV_BYTES;

  int kvh = blockIdx.y, tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  int t0 = chunk_start + blockIdx.x * TOKENS;  // token of the block's first row
  int key_length = chunk_start + chunk;

  load_queries<ROWS, THREADS>(generic(qs), q, chunk_start, key_length, t0, kvh);
  auto load_tile = [&](int tile, int stage) {
    load_kv_tile<KT, THREADS>(generic(ks + stage * KV_BYTES), generic(vs + stage * KV_BYTES), k, v, tile, key_length,
                              kvh);
  };
  int last = min(t0 + TOKENS, key_length) - 1;  // the last key any row of the block sees
  int tiles = last / KT + 1;
  load_tile(0, 0);
  asm volatile("cp.async.commit_group;\n" ::);

  // This thread's rows: r0 and r0 + 8 of the block; their tokens.
  int r0 = wg * 64 + warp * 16 + (lane >> 2);
  int tok0 = t0 + r0 / GROUP, tok1 = t0 + (r0 + 8) / GROUP;
  int warp_first_tok = t0 + (wg * 64 + warp * 16) / GROUP;
  float o[64];
#pragma unroll
  for (int i = 0; i < 64; i++) o[i] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;

  for (int j = 0; j < tiles; j++) {
    int stage = j & 1;
    if (j + 1 < tiles) load_tile(j + 1, stage ^ 1);
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 1;\n" ::);
    fence_async_shared();
    __syncthreads();

    float s[SN];
    wgmma_fence();
    score_tile<ROWS>(s, qs, ks + stage * KV_BYTES, wg);
    wgmma_wait0();

    uint32_t p[KT / 16][4];
    softmax_tile(s, j * KT, lane, tok0, tok1, warp_first_tok, m0, m1, l0, l1, o, p);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < KT / 16; kk++) {
      uint32_t vb = vs + stage * KV_BYTES + kk * 16 * 128;
      wgmma_rs_n128(o, p[kk], wgmma_descriptor(vb, KT * 128, 1024));
    }
    wgmma_commit();
    wgmma_wait0();
    __syncthreads();  // every warpgroup is done with this stage before the next iteration loads into it
  }

  store_rows(out, chunk_start, kvh, r0, tok0, tok1, lane, l0, l1, o);
}

// The same with the next tile's scores in flight while this tile's softmax runs (FlashAttention-3's
// overlap within a warpgroup): S_{j+1} = Q K_{j+1}^T is issued before softmax(S_j), keys and values
// come in three stages, and the warpgroup waits for S_{j+1} and O += P_j V_j together. Two score tiles
// in registers: one block a multiprocessor.
template <int WGS>
__global__ void __launch_bounds__(128 * WGS, 1)
attention_wgmma_pipelined(float* out, const bf16* q, const bf16* k, const bf16* v, int chunk_start, int chunk) {
  constexpr int KT = 64, STAGES = 3, ROWS = 64 * WGS, THREADS = 128 * WGS, TOKENS = ROWS / GROUP;
  constexpr uint32_t Q_BYTES = ROWS * D * 2, KV_BYTES = KT * D * 2;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  uint32_t raw = (uint32_t)__cvta_generic_to_shared(smem_raw), base = (raw + 1023) & ~1023u;
  auto generic = [&](uint32_t a) { return smem_raw + (a - raw); };
  uint32_t qs = base, ks = qs + Q_BYTES, vs = ks + STAGES * KV_BYTES;

  int kvh = blockIdx.y, tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  int t0 = chunk_start + blockIdx.x * TOKENS;
  int key_length = chunk_start + chunk;
  load_queries<ROWS, THREADS>(generic(qs), q, chunk_start, key_length, t0, kvh);  // a last block may run past
  auto load_tile = [&](int tile, int stage) {
    load_kv_tile<KT, THREADS>(generic(ks + stage * KV_BYTES), generic(vs + stage * KV_BYTES), k, v, tile, key_length,
                              kvh);
    asm volatile("cp.async.commit_group;\n" ::);
  };
  auto scores = [&](float (&d)[32], int stage) { score_tile<ROWS>(d, qs, ks + stage * KV_BYTES, wg); };
  int last = min(t0 + TOKENS, key_length) - 1;
  int tiles = last / KT + 1;
  load_tile(0, 0);                      // with the queries
  if (tiles > 1) load_tile(1, 1);
  else asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_group 1;\n" ::);
  fence_async_shared();
  __syncthreads();

  int r0 = wg * 64 + warp * 16 + (lane >> 2);
  int tok0 = t0 + r0 / GROUP, tok1 = t0 + (r0 + 8) / GROUP;
  int warp_first_tok = t0 + (wg * 64 + warp * 16) / GROUP;
  float o[64], s[32], next[32];
#pragma unroll
  for (int i = 0; i < 64; i++) o[i] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  wgmma_fence();
  scores(s, 0);
  wgmma_wait0();
  wgmma_pin(s);

  for (int j = 0; j < tiles; j++) {
    bool more = j + 1 < tiles;
    if (more) {
      // Tile j + 1 has landed, and every warpgroup is past tile j - 1, whose stage takes tile j + 2.
      copies_landed();
      fence_async_shared();
      __syncthreads();
      if (j + 2 < tiles) load_tile(j + 2, (j + 2) % STAGES);
      wgmma_fence();
      scores(next, (j + 1) % STAGES);
    }
    uint32_t p[4][4];
    softmax_tile(s, j * KT, lane, tok0, tok1, warp_first_tok, m0, m1, l0, l1, o, p);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < KT / 16; kk++) {
      uint32_t vb = vs + (j % STAGES) * KV_BYTES + kk * 16 * 128;
      wgmma_rs_n128(o, p[kk], wgmma_descriptor(vb, KT * 128, 1024));
    }
    wgmma_commit();
    wgmma_wait0();
    wgmma_pin(o);
    wgmma_pin(next);
#pragma unroll
    for (int i = 0; i < 32; i++) s[i] = next[i];
  }
  if (tok1 < key_length) store_rows(out, chunk_start, kvh, r0, tok0, tok1, lane, l0, l1, o);
}

// The reference: one warp per checked (token, head) row, fp32 from the same bf16 inputs.
__global__ void reference(float* out, const bf16* q, const bf16* k, const bf16* v, int chunk_start, int chunk,
                          int stride_rows, float* scores) {
  int row = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
  int rows = chunk * QH;
  int r = row * stride_rows;
  if (r >= rows) return;
  int t = r / QH, h = r % QH, kvh = h / GROUP, tok = chunk_start + t;
  const bf16* qr = q + (size_t)r * D;
  float* sc = scores + (size_t)row * (chunk_start + chunk);
  float mx = -INFINITY;
  for (int key = 0; key <= tok; key++) {
    const bf16* kr = k + ((size_t)key * KVH + kvh) * D;
    float dot = 0.f;
    for (int i = lane; i < D; i += 32) dot += __bfloat162float(qr[i]) * __bfloat162float(kr[i]);
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    sc[key] = dot;  // log2 units: q carries log2(e)/sqrt(d)
    mx = fmaxf(mx, dot);
  }
  __syncwarp();
  float sum = 0.f;
  for (int key = lane; key <= tok; key += 32) sum += exp2f(sc[key] - mx);
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  for (int i = lane; i < D; i += 32) {
    float acc = 0.f;
    for (int key = 0; key <= tok; key++) acc += exp2f(sc[key] - mx) * __bfloat162float(v[((size_t)key * KVH + kvh) * D + i]);
    out[(size_t)row * D + i] = acc / sum;
  }
}

__global__ void fill(bf16* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t x = (uint32_t)i * 2654435761u ^ seed;
    x ^= x >> 15, x *= 2246822519u, x ^= x >> 13, x *= 3266489917u, x ^= x >> 16;
    p[i] = __float2bfloat16((x * (1.0f / 4294967296.0f) - 0.5f) * 2.f * scale);
  }
}

struct Variant {
  const char* name;
  void (*kernel)(float*, const bf16*, const bf16*, const bf16*, int, int);
  int kt, wgs, stages;
};

int main(int argc, char** argv) {
  const char* json = argc > 1 ? argv[1] : "attention_wgmma_proto.json";
  std::vector<Variant> variants = {
      {"kt64_wg2", attention_wgmma<64, 2, 1>, 64, 2, 2},
      {"kt64_wg2_2blk", attention_wgmma<64, 2, 2>, 64, 2, 2},
      {"pipelined_wg2", attention_wgmma_pipelined<2>, 64, 2, 3},
      {"pipelined_wg3", attention_wgmma_pipelined<3>, 64, 3, 3},
  };
  struct Case { int start, chunk; };
  std::vector<Case> cases = {{0, 4096}, {28672, 4096}};
  FILE* js = fopen(json, "w");
  fprintf(js, "[\n");
  bool first = true;
  for (Case cs : cases) {
    int keys = cs.start + cs.chunk;
    bf16 *q, *k, *v;
    float *out, *ref, *scores;
    size_t qn = (size_t)cs.chunk * QH * D, kn = (size_t)keys * KVH * D;
    CHECK(cudaMalloc(&q, qn * 2));
    CHECK(cudaMalloc(&k, kn * 2));
    CHECK(cudaMalloc(&v, kn * 2));
    CHECK(cudaMalloc(&out, qn * 4));
    const int STRIDE = 13;
    int checked = (cs.chunk * QH + STRIDE - 1) / STRIDE;
    CHECK(cudaMalloc(&ref, (size_t)checked * D * 4));
    CHECK(cudaMalloc(&scores, (size_t)checked * keys * 4));
    fill<<<1024, 256>>>(q, qn, 1u + cs.start, 1.4426950408889634f / sqrtf((float)D) * 4.f);
    fill<<<1024, 256>>>(k, kn, 2u + cs.start, 1.f);
    fill<<<1024, 256>>>(v, kn, 3u + cs.start, 1.f);
    reference<<<(checked * 32 + 255) / 256, 256>>>(ref, q, k, v, cs.start, cs.chunk, STRIDE, scores);
    CHECK(cudaGetLastError());
    std::vector<float> hr((size_t)checked * D), ho(qn);
    CHECK(cudaMemcpy(hr.data(), ref, hr.size() * 4, cudaMemcpyDeviceToHost));
    double pairs = 0;
    for (int t = 0; t < cs.chunk; t++) pairs += (double)(cs.start + t + 1) * QH;
    double flops = 4.0 * D * pairs;
    for (const Variant& var : variants) {
      int rows = 64 * var.wgs;
      size_t smem = rows * D * 2 + 2 * var.stages * (size_t)var.kt * D * 2 + 1024;
      CHECK(cudaFuncSetAttribute(var.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
      dim3 grid((cs.chunk * GROUP + rows - 1) / rows, KVH);
      CHECK(cudaMemset(out, 0xFF, qn * 4));  // NaN: an unwritten output fails the check
      var.kernel<<<grid, 128 * var.wgs, smem>>>(out, q, k, v, cs.start, cs.chunk);
      CHECK(cudaGetLastError());
      CHECK(cudaDeviceSynchronize());
      CHECK(cudaMemcpy(ho.data(), out, qn * 4, cudaMemcpyDeviceToHost));
      double num = 0, den = 0, worst = 0;
      for (int c = 0; c < checked; c++) {
        size_t r = (size_t)c * STRIDE;
        for (int i = 0; i < D; i++) {
          double a = ho[r * D + i], b = hr[(size_t)c * D + i];
          double dd = std::isnan(a) ? 1e30 : a - b;
          num += dd * dd, den += b * b, worst = std::max(worst, std::fabs(dd));
        }
      }
      double rel = std::sqrt(num / den);
      cudaEvent_t e0, e1;
      CHECK(cudaEventCreate(&e0));
      CHECK(cudaEventCreate(&e1));
      std::vector<float> ms;
      for (int rep = 0; rep < 20; rep++) {
        CHECK(cudaEventRecord(e0));
        var.kernel<<<grid, 128 * var.wgs, smem>>>(out, q, k, v, cs.start, cs.chunk);
        CHECK(cudaEventRecord(e1));
        CHECK(cudaEventSynchronize(e1));
        float t;
        CHECK(cudaEventElapsedTime(&t, e0, e1));
        ms.push_back(t);
      }
      std::sort(ms.begin(), ms.end());
      float med = ms[ms.size() / 2];
      printf("%-18s dense at %6d, chunk %d: %8.3f ms  %6.1f TFLOP/s  rel err %.2e  worst %.2e %s\n", var.name,
             cs.start, cs.chunk, med, flops / med / 1e9, rel, worst, rel < 1e-2 ? "ok" : "FAIL");
      fprintf(js, "%s  {\"variant\": \"%s\", \"start\": %d, \"chunk\": %d, \"ms\": %.4f, \"tflops\": %.1f, \"rel_err\": %.3e}",
              first ? "" : ",\n", var.name, cs.start, cs.chunk, med, flops / med / 1e9, rel);
      first = false;
    }
    cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(out), cudaFree(ref), cudaFree(scores);
  }
  fprintf(js, "\n]\n");
  fclose(js);
  return 0;
}
