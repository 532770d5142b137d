package dev.selma.engine.backend.cpu;

import dev.selma.engine.attention.AttentionPlan;
import dev.selma.engine.attention.AttentionPlan.PositionMap;
import dev.selma.engine.attention.Rope;
import java.util.Arrays;

/**
 * Runs an {@link AttentionPlan} exactly, in fp32: the reference every other executor is held to.
 *
 * <p>One task per (tile, KV head) gathers the keys its plan entry lists, rotated to their RoPE
 * positions (twice under Self-Extend: the neighbour and the grouped position), then each query of
 * the tile and of the KV head's query heads takes one softmax over the keys not after it. Under
 * Self-Extend each score comes from the branch its logical distance picks, before that softmax.
 */
final class CpuAttention {
  private final CpuBackend backend;

  CpuAttention(CpuBackend backend) {
    this.backend = backend;
  }

  void run(CpuActivations out, CpuActivations q, CpuKvCache cache, int layer, Rope rope, AttentionPlan plan) {
    int kvHeads = cache.kvHeads;
    // Logical positions stay below keyLength; Self-Extend's grouped query adds at most W.
    rope.ensure(plan.keyLength() + plan.positionMap().neighbourWindow());
    backend.parallelFor(plan.tiles() * kvHeads,
        task -> tile(out, q, cache, layer, rope, plan, task / kvHeads, task % kvHeads));
  }

  private static void tile(CpuActivations out, CpuActivations q, CpuKvCache cache, int layer, Rope rope,
      AttentionPlan plan, int tile, int kvHead) {
    int d = cache.headDim, b = plan.blockSize(), e = plan.entry(tile, kvHead);
    int chunkStart = plan.keyLength() - q.rows(), group = q.cols() / d / cache.kvHeads;
    int qs = plan.tileStart()[tile], qe = plan.tileEnd()[tile];
    PositionMap map = plan.positionMap();
    boolean selfExtend = map.selfExtend();

    // Gather the listed blocks' keys up to the tile's last query (later ones are never visible).
    int from = plan.keyOffsets()[e], to = plan.keyOffsets()[e + 1];
    int n = 0;
    for (int i = from; i < to; i++) {
      int start = plan.keyBlocks()[i] * b;
      n += Math.min(start + b, qe) - start;
    }
    int[] token = new int[n];
    long[] logical = new long[n];
    float[] keys = new float[n * d], grouped = selfExtend ? new float[n * d] : null;
    int k = 0;
    for (int i = from; i < to; i++) {
      int start = plan.keyBlocks()[i] * b;
      for (int j = start, end = Math.min(start + b, qe); j < end; j++, k++) {
        token[k] = j;
        logical[k] = plan.keyPositions()[i] + (j - start);
        System.arraycopy(cache.keys(cache.page(j), layer), cache.slot(kvHead, j), keys, k * d, d);
        if (selfExtend) {
          System.arraycopy(keys, k * d, grouped, k * d, d);
          rope.rotate(grouped, k * d, map.groupedKey(logical[k]));
        }
        rope.rotate(keys, k * d, map.neighbour(logical[k]));
      }
    }

    float scale = (float) (1 / Math.sqrt(d));
    float[] query = new float[d], groupedQuery = selfExtend ? new float[d] : null, scores = new float[n];
    float[] o = out.data();
    for (int h = kvHead * group; h < (kvHead + 1) * group; h++) {
      int visible = 0;
      for (int t = qs; t < qe; t++) {
        while (visible < n && token[visible] <= t) {
          visible++; // keys are in token order, so the causal mask is a prefix
        }
        long position = t + (long) plan.queryShift()[e];
        System.arraycopy(q.data(), q.at(t - chunkStart, h * d), query, 0, d);
        if (selfExtend) {
          System.arraycopy(query, 0, groupedQuery, 0, d);
          rope.rotate(groupedQuery, 0, map.groupedQuery(position));
        }
        rope.rotate(query, 0, map.neighbour(position));

        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < visible; j++) {
          float s = selfExtend && map.grouped(position - logical[j])
              ? VectorMath.dot(groupedQuery, 0, grouped, j * d, d)
              : VectorMath.dot(query, 0, keys, j * d, d);
          scores[j] = s * scale;
          max = Math.max(max, scores[j]);
        }
        float sum = 0;
        for (int j = 0; j < visible; j++) {
          float p = (float) Math.exp(scores[j] - max);
          scores[j] = p;
          sum += p;
        }
        int oo = out.at(t - chunkStart, h * d);
        Arrays.fill(o, oo, oo + d, 0f);
        for (int j = 0; j < visible; j++) {
          int tok = token[j];
          VectorMath.axpy(scores[j] / sum, cache.values(cache.page(tok), layer), cache.slot(kvHead, tok), o,
              oo, d);
        }
      }
    }
  }
}
