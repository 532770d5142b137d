package dev.selma.engine.backend.cpu;

import dev.selma.engine.attention.AttentionPlan;
import dev.selma.engine.attention.AttentionPlan.PositionMap;
import dev.selma.engine.attention.Rope;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

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
    // Keys are laid out transposed ([dim][key]) so that one query's scores against consecutive keys
    // are vector lanes: a score costs d fused multiply-adds and no horizontal sum.
    int stride = n + VectorMath.F.length();
    int[] token = new int[n];
    long[] logical = new long[n];
    float[] keysT = new float[d * stride], groupedT = selfExtend ? new float[d * stride] : null;
    float[] row = new float[d], groupedRow = new float[d];
    int k = 0;
    for (int i = from; i < to; i++) {
      int start = plan.keyBlocks()[i] * b;
      for (int j = start, end = Math.min(start + b, qe); j < end; j++, k++) {
        token[k] = j;
        logical[k] = plan.keyPositions()[i] + (j - start);
        if (k > 0 && (token[k] <= token[k - 1] || logical[k] < logical[k - 1])) {
          throw new IllegalStateException("plan lists keys out of order at token " + j);
        }
        System.arraycopy(cache.keys(cache.page(j), layer), cache.slot(kvHead, j), row, 0, d);
        if (selfExtend) {
          System.arraycopy(row, 0, groupedRow, 0, d);
          rope.rotate(groupedRow, 0, map.groupedKey(logical[k]));
          for (int c = 0; c < d; c++) {
            groupedT[c * stride + k] = groupedRow[c];
          }
        }
        rope.rotate(row, 0, map.neighbour(logical[k]));
        for (int c = 0; c < d; c++) {
          keysT[c * stride + k] = row[c];
        }
      }
    }

    float scale = (float) (1 / Math.sqrt(d));
    float[] query = new float[d], groupedQuery = selfExtend ? new float[d] : null;
    float[] scores = new float[stride];
    float[] o = out.data();
    for (int h = kvHead * group; h < (kvHead + 1) * group; h++) {
      int visible = 0;
      for (int t = qs; t < qe; t++) {
        while (visible < n && token[visible] <= t) {
          visible++; // keys are in token order, so the causal mask is a prefix
        }
        long position = t + (long) plan.queryShift()[e];
        System.arraycopy(q.data(), q.at(t - chunkStart, h * d), query, 0, d);
        for (int c = 0; c < d; c++) {
          query[c] *= scale;
        }
        // Logical positions grow with the key index, so Self-Extend's grouped keys (distance ≥ W) are
        // a prefix of the visible ones and the neighbours the rest.
        int grouped = 0;
        if (selfExtend) {
          System.arraycopy(query, 0, groupedQuery, 0, d);
          rope.rotate(groupedQuery, 0, map.groupedQuery(position));
          while (grouped < visible && map.grouped(position - logical[grouped])) {
            grouped++;
          }
          scores(groupedQuery, groupedT, stride, d, 0, grouped, scores);
        }
        rope.rotate(query, 0, map.neighbour(position));
        scores(query, keysT, stride, d, grouped, visible, scores);

        float sum = softmaxWeights(scores, visible);
        int oo = out.at(t - chunkStart, h * d);
        Arrays.fill(o, oo, oo + d, 0f);
        float inv = 1 / sum;
        for (int j = 0; j < visible; j++) {
          int tok = token[j];
          VectorMath.axpy(scores[j] * inv, cache.values(cache.page(tok), layer), cache.slot(kvHead, tok), o,
              oo, d);
        }
      }
    }
  }

  /** {@code scores[j] = query · keys[:, j]} for j in [from, to), keys transposed with row stride {@code stride}. */
  private static void scores(float[] query, float[] keysT, int stride, int d, int from, int to, float[] scores) {
    VectorSpecies<Float> f = VectorMath.F;
    for (int j = from; j < to; j += f.length()) {
      VectorMask<Float> m = f.indexInRange(j, to);
      FloatVector acc = FloatVector.zero(f);
      for (int c = 0; c < d; c++) {
        acc = FloatVector.fromArray(f, keysT, c * stride + j, m).fma(FloatVector.broadcast(f, query[c]), acc);
      }
      acc.intoArray(scores, j, m);
    }
  }

  /** Replaces {@code scores[0, n)} by {@code exp(score − max)} and returns their sum. */
  private static float softmaxWeights(float[] scores, int n) {
    VectorSpecies<Float> f = VectorMath.F;
    FloatVector max = FloatVector.broadcast(f, Float.NEGATIVE_INFINITY);
    for (int j = 0; j < n; j += f.length()) {
      max = max.max(FloatVector.fromArray(f, scores, j, f.indexInRange(j, n)).blend(Float.NEGATIVE_INFINITY,
          f.indexInRange(j, n).not()));
    }
    float m = max.reduceLanes(VectorOperators.MAX); // exact in any order
    FloatVector sum = FloatVector.zero(f);
    for (int j = 0; j < n; j += f.length()) {
      VectorMask<Float> in = f.indexInRange(j, n);
      FloatVector w = VectorMath.expNonPositive(FloatVector.fromArray(f, scores, j, in).sub(m));
      w.intoArray(scores, j, in);
      sum = sum.add(w.blend(0f, in.not()));
    }
    return VectorMath.sum(sum);
  }
}
