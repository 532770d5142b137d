// RoPE at attention time (keys are cached before RoPE). cos/sin of position p come from two tables
// split at p = hi*ROPE_SPLIT + lo, built on the host in double precision exactly as the CPU's Rope
// builds them, and combined with the angle-addition formulas: float angles would be a tenth of a
// radian off at a million positions.
#pragma once

#define ROPE_SPLIT 1024

struct RopeTables {
  const float* lo_cos;
  const float* lo_sin;
  const float* hi_cos;
  const float* hi_sin;
  float factor;       // YaRN's attention temperature, 1 otherwise
  int interleaved;    // pairs (2i, 2i+1) instead of (i, i + d/2)
};

// cos and sin (times the attention factor) of pair i's angle at position pos.
__device__ __forceinline__ void rope_cos_sin(const RopeTables& t, int half, int i, long long pos, float* c, float* s) {
  int lo = (int)(pos % ROPE_SPLIT), hi = (int)(pos / ROPE_SPLIT);
  float lc = t.lo_cos[lo * half + i], ls = t.lo_sin[lo * half + i];
  float hc = t.hi_cos[(size_t)hi * half + i], hs = t.hi_sin[(size_t)hi * half + i];
  *c = (lc * hc - ls * hs) * t.factor;
  *s = (ls * hc + lc * hs) * t.factor;
}

// The same for a position below 2^31 (a decode key's): 32-bit index arithmetic, a shift and a mask.
__device__ __forceinline__ void rope_cos_sin(const RopeTables& t, int half, int i, unsigned pos, float* c, float* s) {
  unsigned lo = pos % ROPE_SPLIT, hi = pos / ROPE_SPLIT;
  float lc = t.lo_cos[lo * half + i], ls = t.lo_sin[lo * half + i];
  float hc = t.hi_cos[hi * half + i], hs = t.hi_sin[hi * half + i];
  *c = (lc * hc - ls * hs) * t.factor;
  *s = (ls * hc + lc * hs) * t.factor;
}

// The dimensions that pair i rotates together.
__device__ __forceinline__ int rope_first(const RopeTables& t, int half, int i) { return t.interleaved ? 2 * i : i; }
__device__ __forceinline__ int rope_second(const RopeTables& t, int half, int i) {
  return t.interleaved ? 2 * i + 1 : i + half;
}

// Rotates pair i of the head vector v (in shared memory) to position pos.
__device__ __forceinline__ void rope_rotate_pair(const RopeTables& t, float* v, int half, int i, long long pos) {
  float c, s;
  rope_cos_sin(t, half, i, pos, &c, &s);
  int a = rope_first(t, half, i), b = rope_second(t, half, i);
  float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x1 * c + x0 * s;
}

// Logical positions to RoPE positions (AttentionPlan.PositionMap): Self-Extend's two branches and
// CRD NTK's cycle.
struct PositionMap {
  int group_size;  // Self-Extend G
  int window;      // Self-Extend W; 0 = one branch only
  int period;      // positions modulo this; 0 = no cycle

  __device__ __forceinline__ long long neighbour(long long logical) const {
    return period > 0 ? logical % period : logical;
  }
  __device__ __forceinline__ bool grouped(long long distance) const { return window > 0 && distance >= window; }
  __device__ __forceinline__ long long grouped_query(long long logical) const {
    return logical / group_size + window - window / group_size;
  }
  __device__ __forceinline__ long long grouped_key(long long logical) const { return logical / group_size; }
};
