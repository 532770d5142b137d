package dev.selma.engine.kv;

import java.lang.foreign.MemorySegment;

/**
 * One full page of a backend's KV storage (keys before RoPE, values and the per-granule key and query
 * sums, every layer) that several sequences and the {@link PrefixCache} may hold at once. Once shared
 * a page is never written again: a sequence that must change it works on a copy.
 */
public interface KvPage {

  /** Bytes the page holds in its backend's memory (the fast tier). */
  long bytes();

  /** What the page's host layout means ({@link PagedKvCache#pageFormat()} of its cache). */
  String format();

  /** Bytes of the page in host layout. */
  long hostBytes();

  /**
   * Copies the page into {@code dst} ({@link #hostBytes()} bytes) in host layout: what the host and
   * disk tiers keep.
   */
  void download(MemorySegment dst);

  /** Gives the page's memory back; called once by the last holder, never while a sequence uses it. */
  void free();

  /**
   * Tells the page that the {@link PrefixCache} took it ({@link PrefixCache#offer}): from then on the
   * cache, not the sequence that computed it, gives its memory back. Backends whose pages the garbage
   * collector reclaims need not care.
   */
  default void adopted() {}
}
