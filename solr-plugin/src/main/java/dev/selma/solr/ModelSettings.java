package dev.selma.solr;

import dev.selma.engine.EngineOptions;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.KvPrecision;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One model configured for a Solr node, from {@code <property name="selma.model.NAME.KEY" value="..."/>}
 * entries in {@code solr.xml}. Only {@code path} is required.
 *
 * @param name what requests call it ({@code selma.model=NAME})
 * @param path the GGUF file or Hugging Face folder
 * @param backend auto, cpu or cuda
 * @param threads CPU threads (0 = all processors)
 * @param contextLength tokens of prompt and answer together (0 = the model's)
 * @param prefillChunk prompt tokens per forward step (0 = the backend's: 4096 on a GPU, 512 on the CPU)
 * @param maxConcurrent generations that run at once
 * @param maxQueued requests that may wait for a generation slot; more are refused at once (503)
 * @param queueTimeoutMs how long a request waits for a slot before a 503
 * @param tokenCountCacheSize documents whose token counts are kept
 * @param cache the prefix KV cache: {@code cache} (on or off), {@code cachePageTokens}, {@code
 *     cacheFastBytes} (the backend's memory: heap or GPU), {@code cacheHostBytes}, {@code cacheDiskBytes}
 *     and {@code cacheDiskFolder}; sizes in bytes or with a suffix k, m, g (powers of 1024)
 * @param kvPrecision {@code kvPrecision}: auto, or fp8 for KV pages of half the GPU memory
 */
public record ModelSettings(String name, Path path, EngineOptions.BackendChoice backend, int threads, int contextLength,
    int prefillChunk, int maxConcurrent, int maxQueued, long queueTimeoutMs, long tokenCountCacheSize,
    CacheOptions cache, KvPrecision kvPrecision) {

  public static final String PREFIX = "selma.model.";
  private static final Pattern KEY = Pattern.compile(Pattern.quote(PREFIX) + "([\\w-]+)\\.(\\w+)");
  private static final Set<String> KEYS = Set.of("path", "backend", "threads", "contextLength", "prefillChunk",
      "maxConcurrent", "maxQueued", "queueTimeoutMs", "tokenCountCacheSize", "cache", "cachePageTokens",
      "cacheFastBytes", "cacheHostBytes", "cacheDiskBytes", "cacheDiskFolder", "kvPrecision");

  public EngineOptions engineOptions() {
    return EngineOptions.of(path).withBackend(backend).withThreads(threads).withContextLength(contextLength)
        .withPrefillChunk(prefillChunk).withCache(cache).withKvPrecision(kvPrecision);
  }

  /**
   * Every model configured in {@code props} (defaults included), by name.
   *
   * @throws IllegalArgumentException naming the property that is unknown, missing or malformed
   */
  public static Map<String, ModelSettings> parseAll(Properties props) {
    Map<String, Map<String, String>> byName = new TreeMap<>();
    for (String key : props.stringPropertyNames()) {
      if (!key.startsWith(PREFIX)) {
        continue;
      }
      Matcher m = KEY.matcher(key);
      if (!m.matches() || !KEYS.contains(m.group(2))) {
        throw new IllegalArgumentException("unknown Selma model property '" + key + "'; use " + PREFIX
            + "<name>.<key> with a key among " + new java.util.TreeSet<>(KEYS));
      }
      byName.computeIfAbsent(m.group(1), n -> new TreeMap<>()).put(m.group(2), props.getProperty(key).trim());
    }
    Map<String, ModelSettings> out = new TreeMap<>();
    byName.forEach((name, kv) -> out.put(name, parse(name, kv)));
    return out;
  }

  static ModelSettings parse(String name, Map<String, String> kv) {
    String path = kv.get("path");
    if (path == null || path.isEmpty()) {
      throw new IllegalArgumentException("Selma model '" + name + "' has no " + PREFIX + name + ".path");
    }
    EngineOptions.BackendChoice backend;
    String b = kv.getOrDefault("backend", "auto");
    try {
      backend = EngineOptions.BackendChoice.valueOf(b.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(PREFIX + name + ".backend must be auto, cpu or cuda, got '" + b + "'");
    }
    return new ModelSettings(name, Path.of(path), backend,
        integer(name, kv, "threads", 0, 0),
        integer(name, kv, "contextLength", 0, 0),
        integer(name, kv, "prefillChunk", 0, 0),
        integer(name, kv, "maxConcurrent", 1, 1),
        integer(name, kv, "maxQueued", 16, 0),
        integer(name, kv, "queueTimeoutMs", 30_000, 0),
        integer(name, kv, "tokenCountCacheSize", 100_000, 1),
        cache(name, kv),
        kvPrecision(name, kv));
  }

  private static KvPrecision kvPrecision(String name, Map<String, String> kv) {
    try {
      return KvPrecision.parse(kv.getOrDefault("kvPrecision", "auto"));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(PREFIX + name + ".kvPrecision: " + e.getMessage(), e);
    }
  }

  private static CacheOptions cache(String name, Map<String, String> kv) {
    String on = kv.getOrDefault("cache", "on").toLowerCase(Locale.ROOT);
    if (!on.equals("on") && !on.equals("off")) {
      throw new IllegalArgumentException(PREFIX + name + ".cache must be on or off, got '" + kv.get("cache") + "'");
    }
    if (on.equals("off")) {
      return CacheOptions.disabled();
    }
    CacheOptions defaults = CacheOptions.defaults();
    String folder = kv.get("cacheDiskFolder");
    try {
      return new CacheOptions(true, integer(name, kv, "cachePageTokens", defaults.pageTokens(), 1),
          bytes(name, kv, "cacheFastBytes", defaults.fastBytes()), bytes(name, kv, "cacheHostBytes", 0),
          bytes(name, kv, "cacheDiskBytes", 0), folder == null || folder.isEmpty() ? null : Path.of(folder));
    } catch (IllegalArgumentException e) {
      // CacheOptions names its own parameters (kv_cache.page_tokens ...): say which model and properties.
      throw new IllegalArgumentException("Selma model '" + name + "', properties " + PREFIX + name + ".cache*: "
          + e.getMessage(), e);
    }
  }

  private static long bytes(String name, Map<String, String> kv, String key, long dflt) {
    String v = kv.get(key);
    try {
      return v == null ? dflt : CacheOptions.parseSize(v);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(PREFIX + name + "." + key + ": " + e.getMessage(), e);
    }
  }

  private static int integer(String name, Map<String, String> kv, String key, int dflt, int min) {
    String v = kv.get(key);
    if (v == null) {
      return dflt;
    }
    try {
      int i = Integer.parseInt(v);
      if (i < min) {
        throw new NumberFormatException();
      }
      return i;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(PREFIX + name + "." + key + " must be an integer >= " + min + ", got '" + v + "'");
    }
  }

  /** The configured names, for messages. */
  static List<String> names(Map<String, ModelSettings> all) {
    return new ArrayList<>(all.keySet());
  }
}
