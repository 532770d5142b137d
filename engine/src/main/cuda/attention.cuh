// Shapes shared by the plan-executing attention kernel and the kernel that merges its splits.
#pragma once

#define ATT_KEYS 32                              // keys per step: one per lane of a warp
#define ATT_ROWS 32                              // (query token, query head) rows per block
#define ATT_WARPS 4
#define ATT_ROWS_PER_WARP (ATT_ROWS / ATT_WARPS)
#define ATT_MAX_DIM 256
#define ATT_KEY_THREADS (ATT_WARPS * 32 / ATT_KEYS)  // threads that load and rotate one key
#define ATT_ITEM_INTS 5                          // plan entry, first token, tokens, first head of group, heads

#include <climits>

// The f-th key of a plan entry whose key blocks start at key_blocks[from] (AttentionPlan): its token,
// or INT_MAX past the entry's list (total keys) or the cache's length, and its logical position.
__device__ __forceinline__ int plan_key(const int* key_blocks, const int* key_positions, int from, long long total,
                                        int block_size, int key_length, long long f, int* logical) {
  if (f >= total) return INT_MAX;
  int i = from + (int)(f / block_size), off = (int)(f % block_size);
  int t = key_blocks[i] * block_size + off;
  *logical = key_positions[i] + off;
  return t < key_length ? t : INT_MAX;
}
