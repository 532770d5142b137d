package dev.selma.engine.kv;

/**
 * Counters of a {@link PrefixCache} since it was created, and its contents now.
 *
 * @param hits pages of exact prefixes found cached (in any tier) when a request started
 * @param hitTokens tokens in those pages
 * @param misses full prompt pages that were not found (a chain's lookup stops at its first miss, so
 *     every later full page counts too)
 * @param documentHits documents whose stand-alone keys and values were found whole (document reuse)
 * @param documentHitTokens tokens of those documents
 * @param documentMisses documents that had to be encoded because some page of theirs was not found
 * @param inserts pages computed by requests and added to the cache
 * @param corruptPages page files that failed validation when read; dropped and recomputed
 * @param diskWriteErrors pages that could not be written to the disk tier; dropped
 * @param pagesInUse distinct cached pages held by running sequences (never evicted)
 * @param bytesInUse their bytes, in the fast tier's memory
 * @param fast idle cached pages in the backend's memory
 * @param host pages in off-heap host memory
 * @param disk pages in files
 */
public record CacheStats(long hits, long hitTokens, long misses, long documentHits, long documentHitTokens,
    long documentMisses, long inserts, long corruptPages, long diskWriteErrors, long pagesInUse, long bytesInUse,
    Tier fast, Tier host, Tier disk) {

  /**
   * One tier.
   *
   * @param budgetBytes the most bytes its pages may hold (0 = off)
   * @param bytes bytes its pages hold now
   * @param pages pages it holds now
   * @param hits pages found in it when a request started
   * @param evictions pages that left it to make room (moved to the next tier, or dropped from the last)
   */
  public record Tier(long budgetBytes, long bytes, long pages, long hits, long evictions) {}
}
