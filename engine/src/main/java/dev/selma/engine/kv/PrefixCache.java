package dev.selma.engine.kv;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalListener;
import dev.selma.engine.attention.AttentionConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;

/**
 * Pages of keys and values shared by every request of one model, found by {@link PageKey}: a request
 * whose prompt starts like an earlier one attaches the cached pages and computes only the rest.
 *
 * <p>A page is either <em>in use</em> (held by one or more sequences, counted by reference, never
 * evicted) or <em>idle</em> in one of three tiers, each a Caffeine cache bounded by a byte budget:
 * the <b>fast</b> tier keeps the backend's own page (Java heap on the CPU, GPU memory on a GPU), the
 * <b>host</b> tier a copy in off-heap memory, the <b>disk</b> tier a {@link PageFile}. Caffeine
 * chooses what to evict; an evicted page moves to the next tier that is on, and out of the cache from
 * the last. A page found in a slower tier is uploaded into the backend again and leaves that tier.
 *
 * <p>Document reuse keeps documents' own keys and values in the same tiers and budgets: a document's
 * pages (the last one usually partly filled) chain from {@link #documentRoot}, a namespace apart from
 * prompts' chains, and are found all or none ({@link #acquireDocument}).
 *
 * <p>Every operation runs under one lock, Caffeine's maintenance included (it runs on the calling
 * thread), so moves between tiers are atomic and no tier is ever seen above its budget. Requests
 * touch the cache once per page (hundreds of tokens of compute), so the lock is not contended in
 * practice; its cost is that a move to or from disk holds it for the file's read or write.
 */
public final class PrefixCache implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(PrefixCache.class.getName());

  private final CacheOptions options;
  private final String modelId;
  private final ReentrantLock lock = new ReentrantLock();
  private final Map<PageKey, Pinned> inUse = new HashMap<>();
  private final Cache<PageKey, KvPage> fast;
  /** Null when the tier is off. */
  private final Cache<PageKey, HostPage> host;
  private final Cache<PageKey, DiskPage> disk;
  private boolean closed;
  private long hits, hitTokens, misses, documentHits, documentHitTokens, documentMisses, inserts, corruptPages,
      diskWriteErrors;
  private long fastHits, hostHits, diskHits, fastEvictions, hostEvictions, diskEvictions;

  private static final class Pinned {
    final KvPage page;
    int refs = 1;

    Pinned(KvPage page) {
      this.page = page;
    }
  }

  private record HostPage(KvPage.HostCopy copy, String format) {
    MemorySegment data() {
      return copy.data();
    }
  }

  private record DiskPage(Path file, long bytes) {}

  /**
   * A cache for the model identified by {@code modelId} (see {@link ModelFingerprint}). With a disk
   * tier, creates its folder if needed and adopts the page files already there, oldest first, as far
   * as the budget allows.
   *
   * @throws IllegalArgumentException if the options say the cache is off
   * @throws IOException if the disk folder cannot be created or read
   */
  public PrefixCache(CacheOptions options, String modelId) throws IOException {
    if (!options.enabled()) {
      throw new IllegalArgumentException("the prefix cache is disabled by its options");
    }
    this.options = options;
    this.modelId = modelId;
    this.fast = tier(options.fastBytes(), KvPage::bytes, (k, page, cause) -> evictedFromFast(k, page));
    this.host = options.hostBytes() == 0 ? null
        : tier(options.hostBytes(), h -> h.data().byteSize(), (k, h, cause) -> evictedFromHost(k, h));
    this.disk = options.diskBytes() == 0 ? null
        : tier(options.diskBytes(), DiskPage::bytes, (k, d, cause) -> evictedFromDisk(d));
    if (disk != null) {
      adoptPageFiles(options.diskFolder());
    }
  }

  private interface Weight<V> {
    long of(V value);
  }

  private static <V> Cache<PageKey, V> tier(long budget, Weight<V> weight, RemovalListener<PageKey, V> evicted) {
    return Caffeine.newBuilder()
        .maximumWeight(budget)
        .weigher((PageKey k, V v) -> (int) weight.of(v))
        .executor(Runnable::run)
        .evictionListener(evicted)
        .build();
  }

  private void adoptPageFiles(Path folder) throws IOException {
    try {
      Files.createDirectories(folder);
    } catch (IOException e) {
      throw new IOException("kv_cache.disk_folder " + folder + " cannot be created: " + e, e);
    }
    if (!Files.isWritable(folder)) {
      throw new IOException("kv_cache.disk_folder " + folder + " is not a writable folder");
    }
    List<Path> pages = new ArrayList<>();
    try (Stream<Path> files = Files.list(folder)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        if (f.getFileName().toString().endsWith(PageFile.SUFFIX + ".tmp")) {
          Files.deleteIfExists(f); // a write that did not complete
        } else if (PageFile.keyOf(f) != null && Files.isRegularFile(f)) {
          pages.add(f);
        }
      }
    }
    pages.sort(Comparator.comparing(PrefixCache::modified));
    lock.lock();
    try {
      for (Path f : pages) {
        disk.put(PageFile.keyOf(f), new DiskPage(f, Files.size(f)));
      }
      disk.cleanUp();
    } finally {
      lock.unlock();
    }
  }

  private static FileTime modified(Path f) {
    try {
      return Files.getLastModifiedTime(f);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public CacheOptions options() {
    return options;
  }

  public int pageTokens() {
    return options.pageTokens();
  }

  /**
   * The root key of chains computed by {@code cache}'s backend under {@code attention}: deeper
   * layers' keys and values depend on how earlier tokens attended and at which positions, so pages
   * computed under another configuration are never reused.
   */
  public PageKey root(PagedKvCache cache, AttentionConfig attention) {
    return PageKey.root(namespace(cache, attention));
  }

  private String namespace(PagedKvCache cache, AttentionConfig attention) {
    return modelId + "\n" + cache.pageFormat() + "\n" + attention;
  }

  /**
   * The root of the chains of documents encoded right after {@code context[0, length)} (document
   * reuse): a document's pages hold its keys and values from its own first token on, so its chain
   * starts from what it attended to, not from where it lies in a prompt. A namespace of its own, so
   * that a document's pages never meet a prompt's.
   */
  public PageKey documentRoot(PagedKvCache cache, AttentionConfig attention, int[] context, int length) {
    return PageKey.root(namespace(cache, attention) + "\ndocument after").child(context, 0, length);
  }

  /**
   * Pins and returns the cached pages of the longest prefix of {@code keys} (the chain of a prompt's
   * full pages), in {@code target}'s memory: pages from the host or disk tier are uploaded. Each
   * returned page must be {@linkplain #release released} by key once the caller no longer holds it.
   */
  public List<KvPage> acquire(List<PageKey> keys, PagedKvCache target) {
    List<KvPage> found = new ArrayList<>();
    lock.lock();
    try {
      for (PageKey key : keys) {
        KvPage page = closed ? null : pin(key, target);
        if (page == null) {
          misses += keys.size() - found.size();
          break;
        }
        found.add(page);
      }
      hits += found.size();
      hitTokens += (long) found.size() * options.pageTokens();
      return found;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Pins and returns every page of a document's chain {@code keys}, or none: a document is placed
   * whole or encoded again. Counts a document hit of {@code tokens} tokens, or a miss. Each returned
   * page must be {@linkplain #release released} by key once the caller no longer holds it.
   */
  public List<KvPage> acquireDocument(List<PageKey> keys, int tokens, PagedKvCache target) {
    lock.lock();
    try {
      List<KvPage> found = new ArrayList<>();
      for (PageKey key : keys) {
        KvPage page = closed ? null : pin(key, target);
        if (page == null) {
          for (int i = 0; i < found.size(); i++) {
            release(keys.get(i));
          }
          documentMisses++;
          return List.of();
        }
        found.add(page);
      }
      documentHits++;
      documentHitTokens += tokens;
      return found;
    } finally {
      lock.unlock();
    }
  }

  private KvPage pin(PageKey key, PagedKvCache target) {
    Pinned pinned = inUse.get(key);
    if (pinned != null) {
      pinned.refs++;
      fastHits++;
      return pinned.page;
    }
    KvPage page = fast.asMap().remove(key);
    if (page != null) {
      fastHits++;
    } else if (host != null && host.asMap().remove(key) instanceof HostPage h) {
      page = target.upload(h.data());
      h.copy().close();
      hostHits++;
    } else if (disk != null && disk.asMap().remove(key) instanceof DiskPage d) {
      page = readFromDisk(key, d, target);
      if (page != null) {
        diskHits++;
      }
    }
    if (page != null) {
      inUse.put(key, new Pinned(page));
    }
    return page;
  }

  private KvPage readFromDisk(PageKey key, DiskPage d, PagedKvCache target) {
    try (Arena arena = Arena.ofConfined()) {
      return target.upload(PageFile.read(d.file, key, target.pageFormat(), target.pageHostBytes(), arena));
    } catch (IOException e) {
      // Never use a page that is not exactly what was written: drop it, and the caller recomputes.
      corruptPages++;
      LOG.log(System.Logger.Level.WARNING, "Selma KV cache: dropping page " + key.hex() + ": " + e.getMessage());
      return null;
    } finally {
      deleteQuietly(d.file); // the page now lives in the fast tier, or nowhere
    }
  }

  /**
   * Adds a page a sequence has just completed, pinned for that sequence, unless an equal page (same
   * key) is already in use or in the fast tier; then the caller keeps its page to itself. A copy in
   * a slower tier is dropped in favour of this one.
   *
   * @return whether the cache took the page (then the caller must {@linkplain #release release} it)
   */
  public boolean offer(PageKey key, KvPage page) {
    lock.lock();
    try {
      if (closed || inUse.containsKey(key) || fast.asMap().containsKey(key)) {
        return false;
      }
      if (host != null && host.asMap().remove(key) instanceof HostPage h) {
        h.copy().close();
      }
      if (disk != null && disk.asMap().remove(key) instanceof DiskPage d) {
        deleteQuietly(d.file);
      }
      page.adopted();
      inUse.put(key, new Pinned(page));
      inserts++;
      return true;
    } finally {
      lock.unlock();
    }
  }

  /** Unpins a page acquired or offered; the last holder's release makes it idle in the fast tier. */
  public void release(PageKey key) {
    lock.lock();
    try {
      Pinned pinned = inUse.get(key);
      if (pinned == null) {
        if (closed) {
          return;
        }
        throw new IllegalStateException("page " + key.hex() + " is not in use");
      }
      if (--pinned.refs == 0) {
        inUse.remove(key);
        fast.put(key, pinned.page);
        fast.cleanUp();
      }
    } finally {
      lock.unlock();
    }
  }

  private void evictedFromFast(PageKey key, KvPage page) {
    fastEvictions++;
    if (host != null) {
      KvPage.HostCopy copy = page.toHost();
      page.free();
      host.put(key, new HostPage(copy, page.format()));
      host.cleanUp();
    } else if (disk != null) {
      try (Arena arena = Arena.ofConfined()) {
        MemorySegment data = arena.allocate(page.hostBytes(), 64);
        page.download(data);
        page.free();
        toDisk(key, data, page.format());
      }
    } else {
      page.free();
    }
  }

  private void evictedFromHost(PageKey key, HostPage h) {
    hostEvictions++;
    if (disk != null) {
      toDisk(key, h.data(), h.format);
    }
    h.copy().close();
  }

  private void toDisk(PageKey key, MemorySegment data, String format) {
    Path file = PageFile.path(options.diskFolder(), key);
    try {
      disk.put(key, new DiskPage(file, PageFile.write(file, key, format, data)));
      disk.cleanUp();
    } catch (IOException e) {
      diskWriteErrors++;
      LOG.log(System.Logger.Level.WARNING, "Selma KV cache: cannot write page " + file + ": " + e.getMessage());
      deleteQuietly(file);
    }
  }

  private void evictedFromDisk(DiskPage d) {
    diskEvictions++;
    deleteQuietly(d.file);
  }

  private static void deleteQuietly(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      LOG.log(System.Logger.Level.WARNING, "Selma KV cache: cannot delete " + file + ": " + e.getMessage());
    }
  }

  /** Counters and contents now. */
  public CacheStats stats() {
    lock.lock();
    try {
      long inUseBytes = 0;
      for (Pinned p : inUse.values()) {
        inUseBytes += p.page.bytes();
      }
      return new CacheStats(hits, hitTokens, misses, documentHits, documentHitTokens, documentMisses, inserts,
          corruptPages, diskWriteErrors, inUse.size(), inUseBytes,
          tierStats(fast, options.fastBytes(), fastHits, fastEvictions),
          tierStats(host, options.hostBytes(), hostHits, hostEvictions),
          tierStats(disk, options.diskBytes(), diskHits, diskEvictions));
    } finally {
      lock.unlock();
    }
  }

  private static CacheStats.Tier tierStats(Cache<PageKey, ?> tier, long budget, long hits, long evictions) {
    if (tier == null) {
      return new CacheStats.Tier(0, 0, 0, 0, 0);
    }
    tier.cleanUp();
    long bytes = tier.policy().eviction().orElseThrow().weightedSize().orElseThrow();
    return new CacheStats.Tier(budget, bytes, tier.estimatedSize(), hits, evictions);
  }

  /**
   * Frees the fast and host tiers and forgets the disk tier's index (its files stay, for the next
   * cache on the folder). Pages still in use stay with their sequences; later calls find nothing.
   */
  @Override
  public void close() {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      fast.asMap().values().forEach(KvPage::free);
      fast.asMap().clear();
      if (host != null) {
        host.asMap().values().forEach(h -> h.copy().close());
        host.asMap().clear();
      }
      if (disk != null) {
        disk.asMap().clear();
      }
      inUse.clear();
    } finally {
      lock.unlock();
    }
  }
}
