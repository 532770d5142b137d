package dev.selma.solr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.EngineOptions;
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
        "selma.model.big-one.contextLength", "131072"));
    assertEquals(java.util.List.of("big-one", "demo"), java.util.List.copyOf(all.keySet()));
    ModelSettings demo = all.get("demo");
    assertEquals(Path.of("/m/demo.gguf"), demo.path());
    assertEquals(EngineOptions.BackendChoice.CPU, demo.backend());
    assertEquals(2, demo.maxConcurrent());
    assertEquals(16, demo.maxQueued());
    assertEquals(30_000, demo.queueTimeoutMs());
    assertEquals(131072, all.get("big-one").engineOptions().contextLength());
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
  }
}
