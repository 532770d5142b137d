package dev.selma.engine.backend.cuda;

/**
 * A chunk's keys and values on their way into the cache (kv_store.cuh), as {@code storeKv} was asked for
 * them: a decode step's one token waits for its layer's attention, whose decode kernel stores it in the
 * block that reads it, a launch less a layer (see {@link CudaAttention#run}); anything else launches
 * kv_store.cu's kernel first ({@link #launch}). Activations {@code q}, {@code k}, {@code v} by address.
 */
record KvStore(CudaKvCache cache, int layer, int start, int tokens, int group, long q, long k, long v) {
  void launch(CudaDevice device) {
    int d = cache.headDim, h = cache.kvHeads;
    int granules = (start + tokens - 1) / CudaKvCache.GRANULE - start / CudaKvCache.GRANULE + 1;
    device.launch("kv_store_" + cache.element.suffix, granules, h, Math.min(d, 128), 0, cache.pageTable(),
        cache.valueOffset, cache.keySumOffset, cache.querySumOffset, layer, h, d, group, start, tokens, q, k, v);
  }
}
