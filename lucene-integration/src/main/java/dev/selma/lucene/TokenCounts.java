package dev.selma.lucene;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.selma.engine.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;

/**
 * Token counts of document texts under one tokenizer, cached per document version: a
 * {@link RetrievedDocument#version()} when there is one (a Lucene segment and doc id, or an id and
 * {@code _version_}), else a SHA-256 of the text. Entries of a segment are dropped when the segment
 * closes (see {@link #watch}). Thread-safe.
 */
public final class TokenCounts {
  private final Tokenizer tokenizer;
  private final Cache<Object, Integer> cache;
  private final Set<Object> watchedCores = ConcurrentHashMap.newKeySet();
  private final LongAdder hits = new LongAdder();
  private final LongAdder misses = new LongAdder();

  public TokenCounts(Tokenizer tokenizer, long maxEntries) {
    this.tokenizer = tokenizer;
    this.cache = Caffeine.newBuilder().maximumSize(maxEntries).build();
  }

  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /** The number of tokens of the document's text (no special tokens). */
  public int count(RetrievedDocument doc) {
    Object key = doc.version() != null ? doc.version() : new TextDigest(digest(doc.text()));
    Integer n = cache.getIfPresent(key);
    if (n != null) {
      hits.increment();
      return n;
    }
    misses.increment();
    int counted = count(doc.text());
    cache.put(key, counted);
    return counted;
  }

  /** The number of tokens of {@code text}, not cached. */
  public int count(String text) {
    return tokenizer.encode(text, false).length;
  }

  /**
   * Drops the cached counts of {@code reader}'s segments when they close. Call it with each searcher's
   * reader; a segment is registered once.
   */
  public void watch(IndexReader reader) {
    for (LeafReaderContext leaf : reader.leaves()) {
      IndexReader.CacheHelper helper = leaf.reader().getCoreCacheHelper();
      if (helper != null && watchedCores.add(helper.getKey())) {
        helper.addClosedListener(key -> {
          watchedCores.remove(key);
          cache.asMap().keySet().removeIf(k -> k instanceof RetrievedDocument.SegmentDoc s && s.segmentCoreKey() == key);
        });
      }
    }
  }

  /** Counts answered from the cache. */
  public long hits() {
    return hits.sum();
  }

  /** Counts that had to tokenize. */
  public long misses() {
    return misses.sum();
  }

  public long size() {
    return cache.estimatedSize();
  }

  private record TextDigest(String sha256) {}

  private static String digest(String text) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
      return java.util.HexFormat.of().formatHex(d);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
