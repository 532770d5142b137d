package dev.selma.engine.backend.cpu;

import dev.selma.engine.attention.Rope;

/**
 * Exact causal attention over a {@link CpuKvCache}, fp32. Keys are rotated to their positions once
 * per call into a scratch copy (they are cached before RoPE); each (query, head) pair then takes one
 * softmax over its scores.
 */
final class CpuAttention {
  private final CpuBackend backend;

  CpuAttention(CpuBackend backend) {
    this.backend = backend;
  }

  void run(CpuActivations out, CpuActivations q, CpuKvCache cache, int layer, Rope rope) {
    int start = cache.length(), chunk = q.rows(), keysTotal = start + chunk;
    int kvHeads = cache.kvHeads, headDim = cache.headDim;
    int heads = q.cols() / headDim, group = heads / kvHeads;
    rope.ensure(keysTotal);

    // Rotate every key of this layer to its position, one contiguous matrix per KV head.
    float[][] keys = new float[kvHeads][keysTotal * headDim];
    int pages = (keysTotal + CpuKvCache.PAGE - 1) / CpuKvCache.PAGE;
    backend.parallelFor(kvHeads * pages, task -> {
      int h = task / pages, p = task % pages;
      float[] page = cache.keys(p, layer);
      int from = p * CpuKvCache.PAGE, to = Math.min(keysTotal, from + CpuKvCache.PAGE);
      for (int j = from; j < to; j++) {
        System.arraycopy(page, cache.slot(h, j), keys[h], j * headDim, headDim);
        rope.rotate(keys[h], j * headDim, j);
      }
    });

    float scale = (float) (1 / Math.sqrt(headDim));
    backend.parallelFor(chunk * heads, task -> {
      int t = task / heads, h = task % heads, kvh = h / group;
      int position = start + t, visible = position + 1;
      float[] query = new float[headDim];
      System.arraycopy(q.data(), q.at(t, h * headDim), query, 0, headDim);
      rope.rotate(query, 0, position);

      float[] scores = new float[visible];
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < visible; j++) {
        float s = VectorMath.dot(query, 0, keys[kvh], j * headDim, headDim) * scale;
        scores[j] = s;
        max = Math.max(max, s);
      }
      float sum = 0;
      for (int j = 0; j < visible; j++) {
        float e = (float) Math.exp(scores[j] - max);
        scores[j] = e;
        sum += e;
      }
      float[] o = out.data();
      int oo = out.at(t, h * headDim);
      java.util.Arrays.fill(o, oo, oo + headDim, 0f);
      for (int j = 0; j < visible; j++) {
        float[] vp = cache.values(j / CpuKvCache.PAGE, layer);
        VectorMath.axpy(scores[j] / sum, vp, cache.slot(kvh, j), o, oo, headDim);
      }
    });
  }
}
