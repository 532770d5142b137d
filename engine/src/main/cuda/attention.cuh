// Shapes shared by the plan-executing attention kernel and the kernel that merges its splits.
#pragma once

#define ATT_KEYS 32                              // keys per step: one per lane of a warp
#define ATT_ROWS 32                              // (query token, query head) rows per block
#define ATT_WARPS 4
#define ATT_ROWS_PER_WARP (ATT_ROWS / ATT_WARPS)
#define ATT_MAX_DIM 256
#define ATT_KEY_THREADS (ATT_WARPS * 32 / ATT_KEYS)  // threads that load and rotate one key
#define ATT_ITEM_INTS 5                          // plan entry, first token, tokens, first head of group, heads
