// The 128-byte-swizzled layout of the shared tiles that Hopper's warpgroup products read (wgmma.cuh):
// a tile of R rows of D bf16 is D/64 atoms of [R][64], row r's 16-byte piece c at piece c ^ (r % 8) of
// its 128-byte line, atoms 1,024-byte aligned. Read along the rows (K-major: a row's elements are the
// product's k) a descriptor steps 8-row groups by 1,024 bytes; read across them (MN-major, transposed
// by the instruction) it steps atoms by R * 128.
//
// Key tiles: rope_keys.cu writes the keys and values that attention_wgmma.cu reads as tiles of
// KEY_TILE rows, each the byte image of the shared tile, so that a step's keys (or values) arrive with
// one bulk copy and the copy engine need not know the layout.
#pragma once
#include <stdint.h>

#define KEY_TILE 128

// Byte offset of 16-byte piece c of row r in a swizzled tile of R rows.
__device__ __forceinline__ uint32_t swizzled(int r, int c, int R) {
  return (uint32_t)((c >> 3) * R * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

// Byte offset of element d of row `row` in a run of key tiles of width D.
__device__ __forceinline__ size_t key_tile_byte(long long row, int d, int D) {
  return (size_t)(row / KEY_TILE) * KEY_TILE * D * 2 + swizzled((int)(row % KEY_TILE), d >> 3, KEY_TILE) + 2 * (d & 7);
}
