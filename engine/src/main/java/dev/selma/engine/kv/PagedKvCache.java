package dev.selma.engine.kv;

import java.lang.foreign.MemorySegment;

/**
 * A {@link KvCache} stored in pages of {@link #pageTokens()} tokens that it can share with other
 * sequences through a {@link PrefixCache}: a sequence is then a chain of shared pages (a cached
 * prefix) followed by pages of its own.
 *
 * <p>Shared pages are read-only; writes only ever happen at or after {@link #length()}, which never
 * lies inside a shared page, and a truncation that cuts into a shared page replaces it with a copy.
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
   * Page {@code index}, which must lie wholly below {@link #length()}, marked shared so that this
   * cache will no longer write it.
   */
  KvPage share(int index);

  /**
   * Appends a shared page of this format; {@link #length()} must be a multiple of {@link
   * #pageTokens()} and grows by a page.
   */
  void attach(KvPage page);

  /** A new page of this backend holding {@code hostPage} (host layout, {@link #pageHostBytes()} bytes). */
  KvPage upload(MemorySegment hostPage);
}
