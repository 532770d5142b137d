// Select-and-merge's ranking on the GPU: for every selecting query block, the k best key blocks among
// its group's candidates, best first, so that only k indices per row cross to the host instead of a
// row of scores as long as the sequence in blocks.
//
// Ranking is AttentionPlanner's: a score's float bits made order-preserving, ties to the earlier
// block. Both go into one 64-bit key (score bits above, the block index reversed below), so keys are
// unique and the k best are the k largest keys. A radix select finds them: 8 bits a pass from the top,
// a histogram of the keys that still share the prefix picks the digit where the k-th largest lies; it
// stops as soon as every key with the prefix is in, usually after the score's first bytes. Then each
// selected key's rank is the count of selected keys above it.
#include "common.cuh"

__device__ __forceinline__ unsigned long long rank_key(const float* scores, int block) {
  unsigned int bits = __float_as_uint(scores[block]);
  // Negative floats order backwards: flip their magnitude bits (Java's bits ^ MAX_VALUE), then lift the
  // signed order to unsigned by flipping the sign bit.
  unsigned int ordered = (bits & 0x80000000u) ? bits ^ 0x7fffffffu : bits;
  ordered ^= 0x80000000u;
  return ((unsigned long long)ordered << 32) | (0xffffffffu - (unsigned int)block);
}

// Block (query block row, kv head). scores[head][row][key block] as block_scores writes them; the row's
// candidates are [min(sink_blocks, ws), ws) with ws = the row's group's window start, as the planner
// asks. Writes best[head][row][0..k) and uses selected[head][row][0..k) as scratch.
extern "C" __global__ void block_topk(const float* scores, int query_blocks, int key_blocks, int first_query_block,
                                      int merge, int sink_blocks, int window_blocks, int k, int* best,
                                      unsigned long long* selected) {
  __shared__ unsigned int hist[256];
  __shared__ unsigned long long prefix_s;
  __shared__ int remaining_s, done_s, count_s;
  int row = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
  int query_block = first_query_block + row;
  // The selecting blocks of group g are the blocks of group g - 1: this row chooses for the next group.
  int window_start = min(key_blocks, max(0, (query_block / merge + 1) * merge - window_blocks));
  int from = min(sink_blocks, window_start), to = window_start;
  if (to - from <= k) return;  // the planner reads every candidate
  const float* s = scores + ((size_t)h * query_blocks + row) * key_blocks;
  int* out = best + ((size_t)h * query_blocks + row) * k;
  unsigned long long* sel = selected + ((size_t)h * query_blocks + row) * k;

  unsigned long long prefix = 0, mask = 0;
  if (tid == 0) {
    remaining_s = k;
    done_s = 0;
    count_s = 0;
  }
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (int b = from + tid; b < to; b += blockDim.x) {
      unsigned long long key = rank_key(s, b);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1u);
    }
    __syncthreads();
    if (tid == 0) {
      int remaining = remaining_s;
      unsigned int above = 0;
      int digit = 255;
      while (above + hist[digit] < (unsigned int)remaining) above += hist[digit--];
      remaining_s = remaining - (int)above;
      done_s = hist[digit] == (unsigned int)remaining_s;
      prefix_s = prefix | ((unsigned long long)digit << shift);
    }
    __syncthreads();
    prefix = prefix_s;
    mask |= 255ull << shift;
    if (done_s) break;
    __syncthreads();  // everyone has read done_s before thread 0 may write it again
  }
  // Keys are unique, so exactly k of them are at or above the prefix.
  for (int b = from + tid; b < to; b += blockDim.x) {
    unsigned long long key = rank_key(s, b);
    if ((key & mask) >= prefix) sel[atomicAdd(&count_s, 1)] = key;
  }
  __syncthreads();
  for (int i = tid; i < k; i += blockDim.x) {
    unsigned long long key = sel[i];
    int rank = 0;
    for (int j = 0; j < k; j++) rank += sel[j] > key;
    out[rank] = (int)(0xffffffffu - (unsigned int)(key & 0xffffffffu));
  }
}

// A decode token's choice (selection QUERY) written into its plan where the host, which did not wait
// for the ranking, left placeholders: entry h lists the sink blocks, then k chosen blocks ascending,
// then the window and own blocks. Block h sorts best[h][0..k) (best first) by counting smaller ones;
// with original positions a block's position is its first token's.
extern "C" __global__ void token_plan_blocks(const int* best, int k, int sinks, const int* key_offsets, int* key_blocks,
                                             int* key_positions, int reindexed, int block_size) {
  const int* mine = best + (size_t)blockIdx.x * k;
  int at = key_offsets[blockIdx.x] + sinks;
  for (int i = threadIdx.x; i < k; i += blockDim.x) {
    int block = mine[i], rank = 0;
    for (int j = 0; j < k; j++) rank += mine[j] < block;
    key_blocks[at + rank] = block;
    if (!reindexed) key_positions[at + rank] = block * block_size;
  }
}

// A prefill chunk's choices written into its plan where the host, which did not wait for the ranking,
// left placeholders. Block (x, y) is tile x (query group first_group + x) and KV head y, entry
// x * kv_heads + y, which lists the sink blocks, then k chosen blocks ascending, then the window and own
// blocks. When the group has more candidates than k, its choice is AttentionPlanner's: the top-k lists
// of the selecting query blocks (the group before it) interleaved by rank, de-duplicated, cut at k,
// which always yields k blocks. One thread merges the lists with a bitmap of the candidates in shared
// memory (bitmap_words of them, enough for the chunk's last group), then the block sorts the choice.
extern "C" __global__ void group_plan_blocks(const int* best, int query_blocks, int first_query_block, int first_group,
                                             int merge, int sink_blocks, int window_blocks, int k, int kv_heads,
                                             const int* key_offsets, int* key_blocks, int* key_positions,
                                             int reindexed, int block_size, int bitmap_words) {
  extern __shared__ unsigned int smem_words[];
  unsigned int* taken = smem_words;
  int* chosen = (int*)(smem_words + bitmap_words);
  int g = first_group + blockIdx.x, h = blockIdx.y, first = g * merge;
  int window_start = max(0, first - window_blocks), sinks = min(sink_blocks, window_start);
  if (window_start - sinks <= k) return;  // the planner listed every candidate
  int selecting_from = max(0, first - merge), selecting = first - selecting_from;
  const int* lists = best + ((size_t)h * query_blocks + (selecting_from - first_query_block)) * k;
  for (int i = threadIdx.x; i < bitmap_words; i += blockDim.x) taken[i] = 0;
  __syncthreads();
  if (threadIdx.x == 0) {
    int n = 0;
    for (int rank = 0; rank < k && n < k; rank++)
      for (int r = 0; r < selecting && n < k; r++) {
        int block = lists[(size_t)r * k + rank], bit = block - sinks;
        if (!(taken[bit >> 5] & (1u << (bit & 31)))) {
          taken[bit >> 5] |= 1u << (bit & 31);
          chosen[n++] = block;
        }
      }
  }
  __syncthreads();
  int at = key_offsets[blockIdx.x * kv_heads + h] + sinks;
  for (int i = threadIdx.x; i < k; i += blockDim.x) {
    int block = chosen[i], rank = 0;
    for (int j = 0; j < k; j++) rank += chosen[j] < block;
    key_blocks[at + rank] = block;
    if (!reindexed) key_positions[at + rank] = block * block_size;
  }
}
