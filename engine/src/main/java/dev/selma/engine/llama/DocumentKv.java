package dev.selma.engine.llama;

import dev.selma.engine.kv.PageKey;
import dev.selma.engine.kv.PagedKvCache;
import dev.selma.engine.kv.PrefixCache;
import java.util.List;

/**
 * A document's keys and values as it computes them on its own (after the documents' prefix only),
 * from {@link Sequence#documentKv}, ready to be {@linkplain Sequence#place placed} at any offset:
 * keys are stored before RoPE, so the rows do not depend on where they go. Holds pins on the prefix
 * cache's pages until closed, so that no tier frees a page while its rows are read.
 */
public final class DocumentKv implements AutoCloseable {
  private final PrefixCache prefixCache;
  private final List<PageKey> pinned;
  final PagedKvCache rows;
  final int[] tokens;
  private final boolean cached;
  private boolean closed;

  DocumentKv(PrefixCache prefixCache, List<PageKey> pinned, PagedKvCache rows, int[] tokens, boolean cached) {
    this.prefixCache = prefixCache;
    this.pinned = List.copyOf(pinned);
    this.rows = rows;
    this.tokens = tokens;
    this.cached = cached;
  }

  /** Tokens in the document. */
  public int length() {
    return tokens.length;
  }

  /** Whether the rows came from the prefix cache (else the document was encoded for this request). */
  public boolean cached() {
    return cached;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    rows.close();
    for (PageKey key : pinned) {
      prefixCache.release(key);
    }
  }
}
