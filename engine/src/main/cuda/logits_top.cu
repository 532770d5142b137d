// The k largest logits of one row, largest first (equal values by ascending token id), and the
// softmax denominator of the whole row at a temperature: what a sampler needs to choose a token by
// greedy, top-k, top-p or min-p without the row leaving the GPU (TopLogits.java is the definition).
//
// One block of TOP_THREADS threads: a row is a vocabulary (32K-152K floats) that stays in L2 across
// the passes. A radix select over the floats' order-preserving keys finds the k-th largest key in
// three passes of 11, 11 and 10 bits; the keys above it and the first of those equal to it are then
// collected and sorted (bitonic, in shared memory) as (key descending, id ascending).
#include "common.cuh"

constexpr int TOP_THREADS = 1024;
constexpr int TOP_MAX = 1024;  // TopLogits.MAX_K
constexpr int RADIX_BITS = 11, BINS = 1 << RADIX_BITS;
static_assert(BINS == 2 * TOP_THREADS, "each thread scans two digits");

// Unsigned keys in the order of the floats (as Sampler orders them on the host).
__device__ __forceinline__ unsigned order_key(float v) {
  unsigned b = __float_as_uint(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Inclusive prefix sum of one int per thread over the block.
__device__ int block_inclusive_sum(int v, int* warp_totals) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 1; o < 32; o <<= 1) {
    int u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int t = warp_totals[lane];
    for (int o = 1; o < 32; o <<= 1) {
      int u = __shfl_up_sync(0xffffffffu, t, o);
      if (lane >= o) t += u;
    }
    warp_totals[lane] = t;
  }
  __syncthreads();
  int before = warp == 0 ? 0 : warp_totals[warp - 1];
  __syncthreads();  // warp_totals is reused by the next call
  return v + before;
}

// out: the softmax denominator (double) at byte 0, then k int ids, then their k float logits.
// inv_temperature 0 skips the denominator (greedy and top-k sampling do not need it). A greedy choice
// (k = 1, inv_temperature 0) is also written to host_id when given (mapped pinned memory): the host
// reads it once the kernel is done, with no copy between this kernel and the next step's.
extern "C" __global__ void __launch_bounds__(TOP_THREADS) logits_top(
    const float* __restrict__ x, int n, int k, float inv_temperature, unsigned char* __restrict__ out,
    int* host_id) {
  __shared__ int hist[BINS];
  __shared__ unsigned long long candidates[TOP_MAX];
  __shared__ int warp_totals[32];
  __shared__ unsigned prefix_s, max_key_s;
  __shared__ unsigned long long best_s;
  __shared__ int need_s, taken_s;
  __shared__ double sum_s[32];
  const int tid = threadIdx.x;

  // The largest key and the first id holding it, as (key, ~id): the answer for k = 1 and the softmax's
  // shift. Unrolled, so that a thread has eight loads in flight: the row is in L2, and one block
  // reading it a load at a time spent ~25 us (a 128K vocabulary, H100).
  unsigned long long best = 0;
#pragma unroll 8
  for (int i = tid; i < n; i += TOP_THREADS) {
    best = max(best, ((unsigned long long) order_key(x[i]) << 32) | (unsigned) ~i);
  }
  for (int o = 16; o > 0; o >>= 1) best = max(best, __shfl_xor_sync(0xffffffffu, best, o));
  if (tid == 0) best_s = 0;
  __syncthreads();
  if ((tid & 31) == 0) atomicMax(&best_s, best);
  __syncthreads();
  if (tid == 0) max_key_s = (unsigned) (best_s >> 32);
  __syncthreads();

  // Radix select: after each pass the key's known high bits are `prefix`, and `need` is how many keys
  // with those bits still belong to the top k.
  unsigned prefix = 0, mask = 0;
  int need = k;
  if (k == 1) {
    prefix = max_key_s;
  } else {
    for (int shift = 32 - RADIX_BITS; shift > -RADIX_BITS; shift -= RADIX_BITS) {
      int low = max(shift, 0), width = shift + RADIX_BITS - low;
      unsigned digit_mask = (1u << width) - 1;
      for (int b = tid; b < BINS; b += TOP_THREADS) hist[b] = 0;
      __syncthreads();
      for (int i = tid; i < n; i += TOP_THREADS) {
        unsigned key = order_key(x[i]);
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> low) & digit_mask], 1);
      }
      __syncthreads();
      // Thread t holds digits hi = BINS-1-2t and hi-1: counts from the top digit down.
      int hi = BINS - 1 - 2 * tid;
      int here = hist[hi] + hist[hi - 1];
      int through = block_inclusive_sum(here, warp_totals), above = through - here;
      if (above < need && need <= through) {
        int digit = above + hist[hi] >= need ? hi : hi - 1;
        prefix_s = prefix | ((unsigned) digit << low);
        need_s = need - (digit == hi ? above : above + hist[hi]);
      }
      __syncthreads();
      prefix = prefix_s;
      need = need_s;
      mask |= digit_mask << low;
      __syncthreads();
    }
  }
  const unsigned threshold = prefix;  // the k-th largest key; `need` of the keys equal to it are taken

  // Greedy: the largest key's first id is the answer, and no denominator is asked for.
  if (k == 1 && inv_temperature == 0) {
    if (tid == 0) {
      unsigned id = ~(unsigned) best_s;
      reinterpret_cast<int*>(out + 8)[0] = (int) id;
      reinterpret_cast<float*>(out + 12)[0] = x[id];
      *reinterpret_cast<double*>(out) = 0;
      if (host_id) *host_id = (int) id;
    }
    return;
  }

  // Keys above the threshold, in any order; the first `need` equal to it by id (threads own contiguous
  // ranges, so that a prefix sum of their counts ranks the equal keys); the denominator on the way.
  if (tid == 0) taken_s = 0;
  __syncthreads();
  const int per = (n + TOP_THREADS - 1) / TOP_THREADS, from = min(n, tid * per), to = min(n, from + per);
  const unsigned max_key = max_key_s;
  const float max_value = __uint_as_float((max_key & 0x80000000u) ? max_key & 0x7fffffffu : ~max_key);
  const float shift = max_value * inv_temperature;
  double sum = 0;
  int equal = 0;
  for (int i = from; i < to; i++) {
    float v = x[i];
    unsigned key = order_key(v);
    if (key > threshold) {
      candidates[atomicAdd(&taken_s, 1)] = ((unsigned long long) ~key << 32) | (unsigned) i;
    } else if (key == threshold) {
      equal++;
    }
    if (inv_temperature != 0) sum += (double) expf(v * inv_temperature - shift);
  }
  int rank = block_inclusive_sum(equal, warp_totals) - equal;
  const int above = k - need;
  for (int i = from; i < to && rank < need; i++) {
    unsigned key = order_key(x[i]);
    if (key == threshold) {
      candidates[above + rank] = ((unsigned long long) ~key << 32) | (unsigned) i;
      rank++;
    }
  }
  if (inv_temperature != 0) {
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((tid & 31) == 0) sum_s[tid >> 5] = sum;
  }

  // Bitonic sort of the k candidates, padded to a power of two with keys that sort last.
  int size = 1;
  while (size < k) size <<= 1;
  if (tid >= k && tid < size) candidates[tid] = ~0ull;
  for (int run = 2; run <= size; run <<= 1) {
    for (int stride = run >> 1; stride > 0; stride >>= 1) {
      __syncthreads();
      int j = tid ^ stride;
      if (tid < size && j > tid) {
        unsigned long long a = candidates[tid], b = candidates[j];
        if ((a > b) == ((tid & run) == 0)) {
          candidates[tid] = b;
          candidates[j] = a;
        }
      }
    }
  }
  __syncthreads();
  int* ids = reinterpret_cast<int*>(out + 8);
  float* values = reinterpret_cast<float*>(out + 8 + 4 * (size_t) k);
  if (tid < k) {
    int id = (int) (candidates[tid] & 0xffffffffu);
    ids[tid] = id;
    values[tid] = x[id];
  }
  if (tid == 0) {
    double total = 0;
    if (inv_temperature != 0) {
      for (int w = 0; w < TOP_THREADS / 32; w++) total += sum_s[w];
    }
    *reinterpret_cast<double*>(out) = total;
  }
}
