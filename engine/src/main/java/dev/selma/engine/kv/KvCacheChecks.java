package dev.selma.engine.kv;

/**
 * The argument checks of {@link KvCache} and {@link PagedKvCache} that every backend's cache makes,
 * with the same messages.
 */
public final class KvCacheChecks {
  private KvCacheChecks() {}

  /** {@link KvCache#advance}: {@code tokens} more of the {@code stored} tokens join the sequence. */
  public static void advance(KvCache cache, int tokens, long stored) {
    if (tokens < 0 || (long) cache.length() + tokens > stored) {
      throw new IllegalStateException("advance by " + tokens + " beyond stored tokens");
    }
  }

  /** {@link KvCache#truncate}. */
  public static void truncate(KvCache cache, int newLength) {
    if (newLength < 0 || newLength > cache.length()) {
      throw new IllegalArgumentException("truncate to " + newLength + " of " + cache.length() + " tokens");
    }
  }

  /** {@link PagedKvCache#share}: page {@code index} holds tokens of the sequence. */
  public static void share(PagedKvCache cache, int index) {
    if (index < 0 || (long) index * cache.pageTokens() >= cache.length()) {
      throw new IllegalArgumentException("page " + index + " holds no tokens: the cache holds " + cache.length()
          + " tokens");
    }
  }

  /**
   * {@link PagedKvCache#attach}: {@code page} is of the cache's format ({@code ofThisBackend}: of its
   * backend's page class), {@code shared}, holds {@code tokens} tokens, and the cache's {@code stored}
   * tokens end at a page boundary with room for them.
   */
  public static void attach(PagedKvCache cache, KvPage page, boolean ofThisBackend, boolean shared, int tokens,
      long stored) {
    if (!ofThisBackend || !page.format().equals(cache.pageFormat())) {
      throw new IllegalArgumentException("page of another format: " + page.format() + ", expected "
          + cache.pageFormat());
    }
    if (!shared) {
      throw new IllegalArgumentException("only shared pages (from share or upload) can be attached");
    }
    if (tokens < 1 || tokens > cache.pageTokens()) {
      throw new IllegalArgumentException("a page holds 1 to " + cache.pageTokens() + " tokens, not " + tokens);
    }
    if (cache.length() != stored) {
      throw new IllegalStateException("a page can only be attached at a page boundary, not after " + cache.length()
          + " tokens");
    }
    if ((long) cache.length() + tokens > cache.capacity()) {
      throw new IllegalStateException("attaching a page would exceed the capacity of " + cache.capacity());
    }
  }
}
