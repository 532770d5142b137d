package dev.selma.engine.kv;

import java.nio.file.Path;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How the prefix KV cache is sized. A tier with a budget of 0 is off; eviction moves a page from the
 * fast tier to the next tier that is on, and from the last one out of the cache.
 *
 * @param enabled whether requests share cached pages at all
 * @param pageTokens tokens per page, the unit of reuse: a power of two, at least {@value
 *     #MIN_PAGE_TOKENS} (the granule of the block sums), at most {@value #MAX_PAGE_TOKENS}
 * @param fastBytes budget of idle cached pages in the backend's memory (Java heap on the CPU, GPU
 *     memory on a GPU)
 * @param hostBytes budget of pages moved to off-heap host memory
 * @param diskBytes budget of pages moved to files in {@code diskFolder}
 * @param diskFolder where page files live (kept across restarts); required when {@code diskBytes > 0}
 */
public record CacheOptions(boolean enabled, int pageTokens, long fastBytes, long hostBytes, long diskBytes,
    Path diskFolder) {
  public static final int MIN_PAGE_TOKENS = 16, MAX_PAGE_TOKENS = 65536, DEFAULT_PAGE_TOKENS = 256;

  public CacheOptions {
    if (pageTokens < MIN_PAGE_TOKENS || pageTokens > MAX_PAGE_TOKENS || Integer.bitCount(pageTokens) != 1) {
      throw new IllegalArgumentException("kv_cache.page_tokens must be a power of two from " + MIN_PAGE_TOKENS
          + " to " + MAX_PAGE_TOKENS + ", got " + pageTokens);
    }
    requireBudget("kv_cache.fast_bytes", fastBytes);
    requireBudget("kv_cache.host_bytes", hostBytes);
    requireBudget("kv_cache.disk_bytes", diskBytes);
    if (diskBytes > 0 && diskFolder == null) {
      throw new IllegalArgumentException("kv_cache.disk_folder must be given when kv_cache.disk_bytes > 0");
    }
    if (diskBytes == 0 && diskFolder != null) {
      throw new IllegalArgumentException("kv_cache.disk_folder is set but kv_cache.disk_bytes is 0;"
          + " give the disk tier a budget or drop the folder");
    }
  }

  private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([kKmMgG]?)[bB]?");

  /**
   * A size as operators write it: bytes, or a number with k, m or g (powers of 1024), e.g. 512m, 8g.
   *
   * @throws IllegalArgumentException if {@code text} is not such a size or does not fit a long
   */
  public static long parseSize(String text) {
    Matcher m = SIZE.matcher(text.strip());
    if (!m.matches()) {
      throw new IllegalArgumentException("not a size in bytes (e.g. 8589934592, 512m, 8g): '" + text + "'");
    }
    int shift = switch (m.group(2).toLowerCase(Locale.ROOT)) {
      case "k" -> 10;
      case "m" -> 20;
      case "g" -> 30;
      default -> 0;
    };
    try {
      long n = Long.parseLong(m.group(1));
      if (n > Long.MAX_VALUE >> shift) {
        throw new NumberFormatException();
      }
      return n << shift;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("size too large: '" + text + "'");
    }
  }

  private static void requireBudget(String name, long bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException(name + " must be >= 0 (0 = tier off), got " + bytes);
    }
  }

  /**
   * On, pages of {@value #DEFAULT_PAGE_TOKENS} tokens, a quarter of the Java heap for the fast tier,
   * no host or disk tier.
   */
  public static CacheOptions defaults() {
    return new CacheOptions(true, DEFAULT_PAGE_TOKENS, Runtime.getRuntime().maxMemory() / 4, 0, 0, null);
  }

  /** No sharing between requests (a sequence still reuses what it holds itself). */
  public static CacheOptions disabled() {
    return new CacheOptions(false, DEFAULT_PAGE_TOKENS, 0, 0, 0, null);
  }

  public CacheOptions withPageTokens(int n) {
    return new CacheOptions(enabled, n, fastBytes, hostBytes, diskBytes, diskFolder);
  }

  public CacheOptions withFastBytes(long b) {
    return new CacheOptions(enabled, pageTokens, b, hostBytes, diskBytes, diskFolder);
  }

  public CacheOptions withHostBytes(long b) {
    return new CacheOptions(enabled, pageTokens, fastBytes, b, diskBytes, diskFolder);
  }

  /** The disk tier in {@code folder} with {@code bytes} of budget (0 and null: off). */
  public CacheOptions withDisk(long bytes, Path folder) {
    return new CacheOptions(enabled, pageTokens, fastBytes, hostBytes, bytes, folder);
  }
}
