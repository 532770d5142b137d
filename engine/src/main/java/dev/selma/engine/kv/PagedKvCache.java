package dev.selma.engine.kv;

import java.lang.foreign.MemorySegment;

/**
 * A {@link KvCache} stored in pages of {@link #pageTokens()} tokens that it can share with other
 * sequences through a {@link PrefixCache}: a sequence is then a chain of shared pages (a cached
 * prefix) followed by pages of its own.
 *
 * <p>Shared pages are read-only; writes only ever happen at or after {@link #length()}, and a write
 * into a shared page (one shared before it was full, or one a truncation cut into) goes to a copy.
 */
public interface PagedKvCache extends KvCache {

  /** Tokens per page. */
  int pageTokens();

  /**
   * What a page's bytes mean: element type, layout and shape. Pages of different formats never meet:
   * the format is part of every page key and of every page file's header.
   */
  String pageFormat();

  /** Bytes of one page in host layout ({@link KvPage#download}, {@link #upload}). */
  long pageHostBytes();

  /**
   * Page {@code index}, which must hold tokens below {@link #length()}, marked shared so that this
   * cache will no longer write it. A page shared before it is full (a document's last page) holds
   * only its tokens below {@code length()}; whoever attaches it says how many.
   */
  KvPage share(int index);

  /**
   * Appends a shared page of this format holding {@code tokens} tokens (a full page, or fewer for
   * the last page of a chain); {@link #length()} must be a multiple of {@link #pageTokens()} and
   * grows by {@code tokens}.
   */
  void attach(KvPage page, int tokens);

  /**
   * A new page of this backend holding {@code hostPage} (host layout, {@link #pageHostBytes()} bytes),
   * made for the prefix cache, which owns it ({@link KvPage#adopted}).
   */
  KvPage upload(MemorySegment hostPage);

  /**
   * Appends tokens {@code [from, to)} of {@code source}, a cache of this format, every layer, at
   * {@link #length()}, which grows by {@code to - from}: their keys and values are copied and added
   * to this cache's per-block key statistics exactly as if computed here. A token's query, which no
   * cache keeps, enters the query sums as the mean query of its granule in {@code source}.
   */
  void append(PagedKvCache source, int from, int to);
}
