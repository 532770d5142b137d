package dev.selma.engine.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.model.GgufMetadata;
import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.ModelFormatException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class AttentionProfileTest {
  private static final ModelConfig CONFIG = RandomModel.config(64, 32, 1, 4, 2, false); // context 4096

  private static GgufMetadata metadata(Object... kv) {
    Map<String, Value> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      Object v = kv[i + 1];
      ValueType t = v instanceof String ? ValueType.STRING : ValueType.UINT32;
      m.put((String) kv[i], new Value(t, t, v instanceof Integer n ? (Object) (long) n : v));
    }
    return new GgufMetadata(Path.of("model.gguf"), m);
  }

  @Test
  void withoutSelmaKeysAModelAttendsDenselyAtEveryLength() throws ModelFormatException {
    AttentionProfile p = AttentionProfile.fromGguf(metadata(), CONFIG);
    assertEquals(AttentionConfig.dense(), p.forLength(100_000));
  }

  @Test
  void reindexedSelectAndMergeIsSizedToTheTrainedWindow() throws ModelFormatException {
    AttentionProfile p = AttentionProfile.fromGguf(metadata("selma.train.context_length", 1024,
        "selma.recommended.position_scheme", "reindexed"), CONFIG);
    assertEquals(AttentionConfig.dense(), p.forLength(1024));
    AttentionConfig c = p.forLength(1025);
    assertEquals(new AttentionConfig.Reindexed(), c.positions());
    assertEquals(1024, (c.sinkBlocks() + c.topK() + c.windowBlocks() + c.merge()) * c.blockSize());
    assertEquals(AttentionConfig.Selection.MEAN, c.selection());
    assertEquals(AttentionConfig.Selection.BOUND, AttentionProfile.fromGguf(metadata("selma.train.context_length", 1024,
        "selma.recommended.position_scheme", "reindexed", "selma.recommended.selection", "bound"), CONFIG)
        .forLength(2048).selection());
  }

  @Test
  void anUnknownOrInvalidRecommendationNamesTheKey() {
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> AttentionProfile.fromGguf(
        metadata("selma.recommended.position_scheme", "rerope"), CONFIG));
    assertEquals("model.gguf: selma.recommended.position_scheme: unknown scheme 'rerope'; Selma knows original, "
        + "selfextend and reindexed", e.getMessage());
    assertEquals("model.gguf: selma.recommended.selection: unknown selection 'best'; use mean, bound or query",
        assertThrows(ModelFormatException.class, () -> AttentionProfile.fromGguf(metadata(
            "selma.recommended.position_scheme", "reindexed", "selma.recommended.selection", "best"), CONFIG))
            .getMessage());
    assertThrows(ModelFormatException.class, () -> AttentionProfile.fromGguf(metadata(
        "selma.recommended.position_scheme", "selfextend", "selma.recommended.self_extend.group_size", 4,
        "selma.recommended.self_extend.window", 8192), CONFIG));
  }
}
