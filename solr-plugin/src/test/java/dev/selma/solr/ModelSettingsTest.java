package dev.selma.solr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.EngineOptions;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.KvPrecision;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;

class ModelSettingsTest {
  private static Properties props(String... kv) {
    Properties defaults = new Properties();
    defaults.setProperty("solr.some.other", "x");
    Properties p = new Properties(defaults);
    for (int i = 0; i < kv.length; i += 2) {
      p.setProperty(kv[i], kv[i + 1]);
    }
    return p;
  }

  @Test
  void parsesEveryKeyWithDefaults() {
    Map<String, ModelSettings> all = ModelSettings.parseAll(props("selma.model.demo.path", "/m/demo.gguf",
        "selma.model.demo.backend", "cpu", "selma.model.demo.maxConcurrent", "2", "selma.model.big-one.path", "/m/big",
        "selma.model.big-one.contextLength", "131072", "selma.model.big-one.kvPrecision", "FP8"));
    assertEquals(java.util.List.of("big-one", "demo"), java.util.List.copyOf(all.keySet()));
    ModelSettings demo = all.get("demo");
    assertEquals(Path.of("/m/demo.gguf"), demo.path());
    assertEquals(EngineOptions.BackendChoice.CPU, demo.backend());
    assertEquals(2, demo.maxConcurrent());
    assertEquals(16, demo.maxQueued());
    assertEquals(30_000, demo.queueTimeoutMs());
    assertEquals(131072, all.get("big-one").engineOptions().contextLength());
    assertEquals(KvPrecision.FP8, all.get("big-one").engineOptions().kvPrecision());
    assertEquals(KvPrecision.AUTO, demo.engineOptions().kvPrecision());
    assertTrue(ModelSettings.parseAll(props()).isEmpty());
  }

  @Test
  void mistakesNameTheProperty() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelSettings.parseAll(props(
        "selma.model.demo.path", "/m", "selma.model.demo.thread", "2"))).getMessage()
        .contains("unknown Selma model property 'selma.model.demo.thread'"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelSettings.parseAll(props(
        "selma.model.demo.threads", "2"))).getMessage().contains("selma.model.demo.path"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelSettings.parseAll(props(
        "selma.model.demo.path", "/m", "selma.model.demo.maxConcurrent", "0"))).getMessage()
        .contains("selma.model.demo.maxConcurrent must be an integer >= 1, got '0'"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelSettings.parseAll(props(
        "selma.model.demo.path", "/m", "selma.model.demo.backend", "tpu"))).getMessage()
        .contains("selma.model.demo.backend must be auto, cpu or cuda"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelSettings.parseAll(props(
        "selma.model.demo.path", "/m", "selma.model.demo.kvPrecision", "fp4"))).getMessage()
        .contains("selma.model.demo.kvPrecision: unknown KV precision 'fp4'; expected auto or fp8"));
  }

  @Test
  void cacheBudgetsAreSizesAndTheCacheCanBeTurnedOff() {
    Map<String, ModelSettings> all = ModelSettings.parseAll(props("selma.model.a.path", "/m",
        "selma.model.a.cacheFastBytes", "8g", "selma.model.a.cacheHostBytes", "512m", "selma.model.a.cacheDiskBytes",
        "1073741824", "selma.model.a.cacheDiskFolder", "/var/selma/kv", "selma.model.a.cachePageTokens", "128",
        "selma.model.b.path", "/m", "selma.model.b.cache", "off", "selma.model.c.path", "/m"));
    CacheOptions a = all.get("a").engineOptions().cache();
    assertEquals(8L << 30, a.fastBytes());
    assertEquals(512L << 20, a.hostBytes());
    assertEquals(1L << 30, a.diskBytes());
    assertEquals(Path.of("/var/selma/kv"), a.diskFolder());
    assertEquals(128, a.pageTokens());
    assertFalse(all.get("b").cache().enabled());
    assertEquals(CacheOptions.defaults().fastBytes(), all.get("c").cache().fastBytes());
    assertEquals(0, all.get("c").cache().hostBytes());
  }

  @Test
  void badCacheSettingsNameTheModelAndProperty() {
    assertTrue(message("selma.model.a.cacheHostBytes", "lots").contains("selma.model.a.cacheHostBytes: not a size"));
    assertTrue(message("selma.model.a.cacheHostBytes", "99999999999g").contains("too large"));
    assertTrue(message("selma.model.a.cache", "maybe").contains("selma.model.a.cache must be on or off"));
    String noFolder = message("selma.model.a.cacheDiskBytes", "1g");
    assertTrue(noFolder.contains("Selma model 'a'") && noFolder.contains("kv_cache.disk_folder"), noFolder);
    assertTrue(message("selma.model.a.cachePageTokens", "100").contains("kv_cache.page_tokens"));
  }

  private static String message(String key, String value) {
    return assertThrows(IllegalArgumentException.class,
        () -> ModelSettings.parseAll(props("selma.model.a.path", "/m", key, value))).getMessage();
  }
}
