package dev.selma.engine.kv;

import java.lang.foreign.Arena;
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

  /**
   * A copy of the page in host memory, in host layout, for the prefix cache's host tier; closing it
   * gives the memory back. Backends may give memory the device copies to and from faster (pinned
   * memory on a GPU) than the plain off-heap memory of this default.
   */
  default HostCopy toHost() {
    Arena arena = Arena.ofShared();
    MemorySegment data = arena.allocate(hostBytes(), 64);
    download(data);
    return new HostCopy(data, arena::close);
  }

  /** A page's bytes in host memory and how to give them back. */
  record HostCopy(MemorySegment data, Runnable release) implements AutoCloseable {
    @Override
    public void close() {
      release.run();
    }
  }
}
