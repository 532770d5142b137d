// Times the tensor-core prefill attention (attention_tc.cu, and on Hopper attention_wgmma.cu) and the
// key rotation it reads (rope_keys.cu) alone, on synthetic plans of Llama-3-8B's attention shapes (32 query heads, 8 KV
// heads of width 128, bf16 pages, blocks of 64), and checks the output against a plain fp32 kernel on
// a sample of work items. Prints a table and writes JSON (argv[1], default attention_tc_bench.json).
//
// Built on the GPU machine beside the sources, so that a variant of a kernel file is measured
// without the Java engine (-DHEAD_DIM=64 for width 64, -DINTERLEAVED=1 for pairs (2i, 2i + 1)):
//   nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -I engine/src/main/cuda -o /tmp/atb \
//     tools/kernel-bench/attention_tc_bench.cu
//   /tmp/atb out.json
// Plans: `dense S N` is a chunk of N queries at token S reading every earlier key (one tile);
// `select S N` is select-and-merge's plan for the same chunk with tiles of 256 queries (merge 4),
// one sink block, 4 window blocks and 119 chosen blocks per tile and KV head, positions re-indexed.
#define SELMA_TC_ON_HOPPER  // both kernels in this benchmark's Hopper code, to compare them
#include "attention_tc.cu"
#include "attention_wgmma.cu"
#include "rope_keys.cu"
#include "fill.cu"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "check.cuh"

#ifndef HEAD_DIM
#define HEAD_DIM 128
#endif
#ifndef INTERLEAVED
#define INTERLEAVED 0
#endif
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define TC_KERNEL CAT(attention_tc_bf16_d, HEAD_DIM)
#define WG_KERNEL CAT(attention_wgmma_bf16_d, HEAD_DIM)
#ifndef ASCENDING_ITEMS
#define ASCENDING_ITEMS 0
#endif
#ifndef BLOCK_SIZE
#define BLOCK_SIZE 64  // -DBLOCK_SIZE=48: plan blocks that are not whole steps (a lookup per key)
#endif
static const int D = HEAD_DIM, QH = 32, KVH = 8, GROUP = 4, BS = BLOCK_SIZE, PAIRS_PER_LANE = HEAD_DIM / 64;

struct Plan {
  std::string name;
  int start, chunk, key_length;
  std::vector<int> tile_start, tile_end, offsets, blocks, positions, shift, items, row_base;
  int rows = 0;  // rotated key rows
};

static void add_items(Plan& p) {
  int tokens_per_item = TC_ROWS / GROUP;
  for (size_t tile = 0; tile < p.tile_start.size(); tile++)
    for (int h = 0; h < KVH; h++)
      for (int i = 0, n = (p.tile_end[tile] - p.tile_start[tile] + tokens_per_item - 1) / tokens_per_item; i < n; i++) {
        // As the engine lists them, an entry's last tokens (the most keys) first; -DASCENDING_ITEMS=1 as
        // it did before session 13.
        int t = p.tile_start[tile] + (ASCENDING_ITEMS ? i : n - 1 - i) * tokens_per_item, e = (int)tile * KVH + h;
        p.items.insert(p.items.end(), {e, t, std::min(tokens_per_item, p.tile_end[tile] - t), 0, GROUP});
      }
  int entries = (int)p.offsets.size() - 1;
  for (int e = 0; e < entries; e++) {
    p.row_base.push_back(p.rows);
    p.rows += (p.offsets[e + 1] - p.offsets[e]) * BS;
  }
}

static Plan dense(int start, int chunk) {
  Plan p{"dense", start, chunk, start + chunk};
  p.tile_start = {start};
  p.tile_end = {start + chunk};
  p.offsets.push_back(0);
  int nb = (start + chunk + BS - 1) / BS;
  for (int h = 0; h < KVH; h++) {
    for (int b = 0; b < nb; b++) {
      p.blocks.push_back(b);
      p.positions.push_back(b * BS);
    }
    p.offsets.push_back((int)p.blocks.size());
    p.shift.push_back(0);
  }
  add_items(p);
  return p;
}

static Plan select_merge(int start, int chunk, std::mt19937& rng) {
  const int tile = 4 * BS, topk = 119, window = 4;
  Plan p{"select", start, chunk, start + chunk};
  p.offsets.push_back(0);
  for (int ts = start; ts < start + chunk; ts += tile) {
    p.tile_start.push_back(ts);
    p.tile_end.push_back(std::min(ts + tile, start + chunk));
    int fb = ts / BS, own = (p.tile_end.back() - ts + BS - 1) / BS;
    for (int h = 0; h < KVH; h++) {
      std::vector<int> list;
      for (int b = 0; b < std::min(1, fb); b++) list.push_back(b);
      std::vector<int> candidates;
      for (int b = 1; b < fb - window; b++) candidates.push_back(b);
      std::shuffle(candidates.begin(), candidates.end(), rng);
      for (int i = 0; i < std::min(topk, (int)candidates.size()); i++) list.push_back(candidates[i]);
      for (int b = std::max(0, fb - window); b < fb + own; b++)
        if (b > 0 || list.empty()) list.push_back(b);
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
      int own_index = 0;
      for (size_t i = 0; i < list.size(); i++) {
        p.blocks.push_back(list[i]);
        p.positions.push_back((int)i * BS);
        if (list[i] == fb) own_index = (int)i;
      }
      p.offsets.push_back((int)p.blocks.size());
      p.shift.push_back(own_index * BS - fb * BS);
    }
  }
  add_items(p);
  return p;
}

// One warp per (item, row): the definition, in fp32, from the pages (keys rotated here) and the plan.
__global__ void reference(float* out, const float* q, int q_cols, int chunk_start, const long long* pages,
                          long long value_offset, const int* items, const int* offsets, const int* blocks,
                          const int* positions, const int* shift, int key_length, RopeTables rope, float scale,
                          int item_stride) {
  int lane = threadIdx.x & 31, r = blockIdx.y * 32 + (threadIdx.x >> 5);
  const int* item = items + ATT_ITEM_INTS * (blockIdx.x * item_stride);
  int e = item[0], t0 = item[1], nt = item[2], g0 = item[3], ng = item[4];
  if (r >= nt * ng) return;
  int token = t0 + r / ng, head = (e % KVH) * GROUP + g0 + r % ng, half = D / 2;
  const float* qr = q + (size_t)(token - chunk_start) * q_cols + (size_t)head * D;
  float qv[4];
  for (int j = 0; j < PAIRS_PER_LANE; j++) {
    int i = lane + 32 * j, a = rope_first(rope, half, i), b = rope_second(rope, half, i);
    float c, s;
    rope_cos_sin(rope, half, i, (long long)(token + shift[e]), &c, &s);
    qv[2 * j] = qr[a] * c - qr[b] * s;
    qv[2 * j + 1] = qr[b] * c + qr[a] * s;
  }
  float m = -INFINITY, l = 0.f, o[4] = {0, 0, 0, 0};
  long long total = (long long)(offsets[e + 1] - offsets[e]) * BS;
  for (long long f = 0; f < total; f++) {
    int logical;
    int t = plan_key(blocks, positions, offsets[e], total, BS, key_length, f, &logical);
    if (t == INT_MAX || t > token) continue;
    const __nv_bfloat16* k = kv_row<__nv_bfloat16>(pages, 0, 0, KVH, D, e % KVH, t);
    float dot = 0.f;
    for (int j = 0; j < PAIRS_PER_LANE; j++) {
      int i = lane + 32 * j, a = rope_first(rope, half, i), b = rope_second(rope, half, i);
      float c, s, k0 = __bfloat162float(k[a]), k1 = __bfloat162float(k[b]);
      rope_cos_sin(rope, half, i, (long long)logical, &c, &s);
      dot += qv[2 * j] * (k0 * c - k1 * s) + qv[2 * j + 1] * (k1 * c + k0 * s);
    }
    float x = warp_sum(dot) * scale, mn = fmaxf(m, x), c = expf(m - mn), pk = expf(x - mn);
    const __nv_bfloat16* v = kv_row<__nv_bfloat16>(pages, value_offset, 0, KVH, D, e % KVH, t);
    l = l * c + pk;
    for (int j = 0; j < PAIRS_PER_LANE; j++) {
      int i = lane + 32 * j, a = rope_first(rope, half, i), b = rope_second(rope, half, i);
      o[2 * j] = o[2 * j] * c + pk * __bfloat162float(v[a]);
      o[2 * j + 1] = o[2 * j + 1] * c + pk * __bfloat162float(v[b]);
    }
    m = mn;
  }
  float* dst = out + (size_t)(token - chunk_start) * q_cols + (size_t)head * D;
  for (int j = 0; j < PAIRS_PER_LANE; j++) {
    int i = lane + 32 * j;
    dst[rope_first(rope, half, i)] = o[2 * j] / l;
    dst[rope_second(rope, half, i)] = o[2 * j + 1] / l;
  }
}

template <typename T>
static T* upload(const std::vector<T>& v) {
  T* d;
  CHECK(cudaMalloc(&d, std::max<size_t>(1, v.size()) * sizeof(T)));
  CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

int main(int argc, char** argv) {
  const char* json = argc > 1 ? argv[1] : "attention_tc_bench.json";
  std::mt19937 rng(7);
  // The first plan's chunk ends off a step and leaves its last items partial (13 tokens: a second
  // warpgroup of padding rows); it is checked item by item, the larger ones every 13th item.
  std::vector<Plan> plans = {dense(100, 3981), dense(4096, 4096), dense(28672, 4096), dense(126976, 4096),
                             select_merge(28672, 4096, rng),
                             select_merge(126976, 4096, rng), select_merge(1044480, 4096, rng)};
  const int max_len = 1048576;

  // RoPE tables as the host builds them (theta 500000), in double precision.
  int half = D / 2, his = max_len / ROPE_SPLIT + 2;
  std::vector<float> lc(ROPE_SPLIT * half), ls(ROPE_SPLIT * half), hc((size_t)his * half), hs((size_t)his * half);
  for (int i = 0; i < half; i++) {
    double w = std::pow(500000.0, -2.0 * i / D);
    for (int p = 0; p < ROPE_SPLIT; p++) lc[p * half + i] = (float)std::cos(p * w), ls[p * half + i] = (float)std::sin(p * w);
    for (int p = 0; p < his; p++) {
      double a = std::fmod((double)p * ROPE_SPLIT * w, 2 * M_PI);
      hc[(size_t)p * half + i] = (float)std::cos(a), hs[(size_t)p * half + i] = (float)std::sin(a);
    }
  }
  RopeTables rope{upload(lc), upload(ls), upload(hc), upload(hs), 1.f, INTERLEAVED};
  float scale = 1.f / std::sqrt((float)D);

  // Pages of one layer: keys then values, [kv head][slot][dim] bf16.
  long long value_offset = (long long)KVH * KV_PAGE * D * 2;
  int npages = max_len / KV_PAGE;
  char* kv;
  CHECK(cudaMalloc(&kv, (size_t)npages * 2 * value_offset));
  fill_uniform_bf16<<<1024, 256>>>((__nv_bfloat16*)kv, (long long)npages * value_offset, 1, 0.f, 1.f);
  std::vector<long long> table(npages);
  for (int i = 0; i < npages; i++) table[i] = (long long)(kv + (size_t)i * 2 * value_offset);
  long long* pages = upload(table);

  int q_cols = QH * D, chunk = 4096;
  float *q, *out, *ref;
  CHECK(cudaMalloc(&q, (size_t)chunk * q_cols * 4));
  CHECK(cudaMalloc(&out, (size_t)chunk * q_cols * 4));
  CHECK(cudaMalloc(&ref, (size_t)chunk * q_cols * 4));
  fill_uniform_f32<<<1024, 256>>>(q, (long long)chunk * q_cols, 2, 0.f, 2.f);
  int smem = 2 * (TC_ROWS * (D + TC_PAD) + 4 * TC_KEYS * (D + TC_PAD)) + 4 * (2 * TC_KEYS + 2 * TC_ROWS);
  CHECK(cudaFuncSetAttribute(TC_KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  // attention_wgmma.cu runs only where its sm_90a code does (compute capability 9.0).
  int device, major, minor;
  CHECK(cudaGetDevice(&device));
  CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  bool hopper = major == 9 && minor == 0;
  int wg_smem = 2 * (WG_ROWS * D + 2 * WG_STAGES * KEY_TILE * D) + 8 * 4 * WG_STAGES + 4 * WG_RING * (KEY_TILE + 1) +
                8 * WG_ROWS + 1024;
  if (hopper) CHECK(cudaFuncSetAttribute(WG_KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, wg_smem));

  FILE* js = fopen(json, "w");
  fprintf(js, "[\n");
  printf("| plan | start | queries | items | keys/entry | kernel | rope_keys ms | attention ms | TFLOP/s | max err |\n");
  printf("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
  for (size_t pi = 0; pi < plans.size(); pi++) {
    Plan& p = plans[pi];
    int *items = upload(p.items), *offsets = upload(p.offsets), *blocks = upload(p.blocks),
        *positions = upload(p.positions), *shift = upload(p.shift), *row_base = upload(p.row_base);
    // attention_tc.cu reads rows one after another and values from the pages; attention_wgmma.cu key
    // tiles (each entry padded to whole tiles) and values beside them.
    std::vector<int> tiled_base;
    int tiled_rows = 0;
    for (size_t e = 0; e + 1 < p.offsets.size(); e++) {
      tiled_base.push_back(tiled_rows);
      tiled_rows += ((p.offsets[e + 1] - p.offsets[e]) * BS + KEY_TILE - 1) / KEY_TILE * KEY_TILE;
    }
    int* row_base_tiled = upload(tiled_base);
    __nv_bfloat16 *rotated, *tiles;
    CHECK(cudaMalloc(&rotated, (size_t)p.rows * D * 2));
    CHECK(cudaMalloc(&tiles, (size_t)tiled_rows * D * 2 * 2));
    int nitems = (int)p.items.size() / ATT_ITEM_INTS, entries = (int)p.offsets.size() - 1, max_keys = 0;
    for (int e = 0; e < entries; e++) max_keys = std::max(max_keys, (p.offsets[e + 1] - p.offsets[e]) * BS);
    // Useful work: every (row, visible key) pair, a QK^T and a PV product of width D.
    double pairs = 0;
    for (int it = 0; it < nitems; it++) {
      int e = p.items[5 * it], t0 = p.items[5 * it + 1], nt = p.items[5 * it + 2];
      for (int t = t0; t < t0 + nt; t++)
        for (int i = p.offsets[e]; i < p.offsets[e + 1]; i++) {
          int first = p.blocks[i] * BS;
          pairs += GROUP * std::max(0, std::min(BS, std::min(t + 1, p.key_length) - first));
        }
    }
    auto rope_launch = [&](bool tiled) {
      int rows = tiled ? (max_keys + KEY_TILE - 1) / KEY_TILE * KEY_TILE : max_keys;
      rope_keys_bf16<<<dim3((rows + 63) / 64, entries), 256>>>(
          tiled ? tiles : rotated, tiled ? tiles + (size_t)tiled_rows * D : nullptr, tiled ? row_base_tiled : row_base,
          0, pages, value_offset, 0, KVH, D, offsets, blocks, positions, BS, p.key_length, 0, rope.lo_cos,
          rope.lo_sin, rope.hi_cos, rope.hi_sin, 1.f, INTERLEAVED, tiled);
    };
    auto attention_launch = [&](bool wgmma) {
      if (wgmma)
        WG_KERNEL<<<nitems, WG_THREADS, wg_smem>>>(
            out, q, q_cols, p.start, pages, value_offset, 0, KVH, GROUP, items, 0, offsets, blocks, positions, shift,
            BS, p.key_length, 0, rope.lo_cos, rope.lo_sin, rope.hi_cos, rope.hi_sin, 1.f, INTERLEAVED, scale, tiles,
            tiles + (size_t)tiled_rows * D, row_base_tiled);
      else
        TC_KERNEL<<<nitems, TC_WARPS * 32, smem>>>(
            out, q, q_cols, p.start, pages, value_offset, 0, KVH, GROUP, items, 0, offsets, blocks, positions, shift,
            BS, p.key_length, 0, rope.lo_cos, rope.lo_sin, rope.hi_cos, rope.hi_sin, 1.f, INTERLEAVED, scale, rotated,
            nullptr, row_base);
    };
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    auto time = [&](auto launch) {
      launch();
      launch();
      CHECK(cudaDeviceSynchronize());
      const int reps = 10;
      CHECK(cudaEventRecord(e0));
      for (int i = 0; i < reps; i++) launch();
      CHECK(cudaEventRecord(e1));
      CHECK(cudaEventSynchronize(e1));
      float ms;
      CHECK(cudaEventElapsedTime(&ms, e0, e1));
      return ms / reps;
    };
    float rope_ms = time([&] { rope_launch(false); }), rope_tiled_ms = time([&] { rope_launch(true); });
    // Reference on every 13th item.
    int stride = p.key_length <= 8192 ? 1 : 13, sampled = (nitems + stride - 1) / stride;
    reference<<<dim3(sampled, TC_ROWS / 32), 1024>>>(ref, q, q_cols, p.start, pages, value_offset, items, offsets, blocks,
                                         positions, shift, p.key_length, rope, scale, stride);
    CHECK(cudaDeviceSynchronize());
    std::vector<float> a((size_t)chunk * q_cols), b((size_t)chunk * q_cols);
    CHECK(cudaMemcpy(b.data(), ref, b.size() * 4, cudaMemcpyDeviceToHost));
    for (int wgmma = 0; wgmma < (hopper ? 2 : 1); wgmma++) {
      const char* kernel = wgmma ? "wgmma" : "mma.sync";
      CHECK(cudaMemset(out, 0xFF, (size_t)chunk * q_cols * 4));  // NaN: a row the kernel misses fails the check
      float att_ms = time([&] { attention_launch(wgmma); });
      CHECK(cudaGetLastError());
      CHECK(cudaMemcpy(a.data(), out, a.size() * 4, cudaMemcpyDeviceToHost));
      double err = 0, mag = 0;
      for (int s = 0; s < sampled; s++) {
        int it = s * stride, e = p.items[5 * it], t0 = p.items[5 * it + 1], nt = p.items[5 * it + 2];
        for (int t = t0; t < t0 + nt; t++)
          for (int g = 0; g < GROUP; g++) {
            size_t row = (size_t)(t - p.start) * q_cols + (size_t)((e % KVH) * GROUP + g) * D;
            for (int d = 0; d < D; d++) {
              double diff = std::fabs(a[row + d] - b[row + d]);
              err = std::isnan(diff) ? INFINITY : std::max(err, diff);
              mag = std::max(mag, (double)std::fabs(b[row + d]));
            }
          }
      }
      double tflops = 4.0 * D * pairs / (att_ms * 1e-3) / 1e12, rel = err / mag;
      float r_ms = wgmma ? rope_tiled_ms : rope_ms;
      printf("| %s | %d | %d | %d | %d | %s | %.3f | %.3f | %.1f | %.2e |\n", p.name.c_str(), p.start, p.chunk, nitems,
             max_keys, kernel, r_ms, att_ms, tflops, rel);
      fprintf(js, "%s  {\"plan\": \"%s\", \"start\": %d, \"queries\": %d, \"kernel\": \"%s\", \"rope_keys_ms\": %.4f, "
                  "\"attention_ms\": %.4f, \"tflops\": %.2f, \"max_rel_err\": %.3e}",
              pi || wgmma ? ",\n" : "", p.name.c_str(), p.start, p.chunk, kernel, r_ms, att_ms, tflops, rel);
      if (!(rel <= 2e-2)) {
        fprintf(stderr, "%s, %s at %d: output differs from the reference by %.3e of its largest value\n", kernel,
                p.name.c_str(), p.start, rel);
        return 1;
      }
    }
    cudaFree(items), cudaFree(offsets), cudaFree(blocks), cudaFree(positions), cudaFree(shift), cudaFree(row_base),
        cudaFree(rotated), cudaFree(tiles), cudaFree(row_base_tiled);
  }
  fprintf(js, "\n]\n");
  fclose(js);
  return 0;
}
