package dev.selma.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelLoaderTest {
  @TempDir Path dir;
  private Path gguf;

  @BeforeEach
  void convertTinyLlama() throws IOException {
    gguf = dir.resolve("llama.gguf");
    try (ModelFiles hf = ModelLoader.open(TinyHfModel.llama().write(dir.resolve("hf"), 1))) {
      HfToGguf.convert(hf, gguf, GgmlType.F32, Map.of());
    }
  }

  /** A copy of the converted file without the tensors {@code drop} selects, then with {@code edit} applied. */
  private Path variant(Predicate<String> drop, Consumer<GgufWriter> edit) throws IOException {
    Path out = dir.resolve("variant.gguf");
    try (GgufFile in = GgufFile.open(gguf)) {
      GgufWriter w = new GgufWriter().putAll(in.metadata().values());
      for (Tensor t : in.tensors().values()) {
        if (!drop.test(t.name())) {
          w.addTensor(t);
        }
      }
      edit.accept(w);
      w.write(out);
    }
    return out;
  }

  private static void rejects(Path file, String expectedSuffix) {
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelLoader.open(file).close());
    assertEquals(file + ": " + expectedSuffix, e.getMessage());
  }

  @Test
  void opensHuggingFaceFolders() throws IOException {
    Path folder = dir.resolve("hf");
    try (ModelFiles m = ModelLoader.open(folder)) {
      assertEquals(ModelFiles.Format.HF, m.format());
      assertEquals(folder, m.path());
      assertNull(m.ggufMetadata());
      assertEquals(new ModelConfig("llama", 64, 256, 512, 2, 4, 2, 64, 1e-5, 500000, RopeScaling.NONE, 4096, false,
          false, ModelConfig.RopeStyle.HALF), m.config());
      assertEquals("lm_head.weight", m.weights().output().name());
      assertEquals("model.layers.1.mlp.down_proj.weight", m.weights().layers().get(1).wDown().name());
      assertNull(m.weights().layers().get(0).bq());
    }
    try (ModelFiles m = ModelLoader.open(folder.resolve("config.json"))) {
      assertEquals(2, m.weights().layers().size());
    }
  }

  @Test
  void opensShardedTiedQwen2Folders() throws IOException {
    try (ModelFiles m = ModelLoader.open(TinyHfModel.qwen2().withShards(2).write(dir.resolve("qwen"), 2))) {
      assertSame(m.weights().tokenEmbedding(), m.weights().output());
      assertArrayEquals(new long[] {128}, m.weights().layers().get(1).bk().shape());
    }
  }

  @Test
  void opensGgufFiles() throws IOException {
    try (ModelFiles m = ModelLoader.open(gguf)) {
      assertEquals(ModelFiles.Format.GGUF, m.format());
      assertEquals("llama", m.ggufMetadata().getString("general.architecture"));
      assertEquals(new ModelConfig("llama", 64, 256, 512, 2, 4, 2, 64, (float) 1e-5, 500000, RopeScaling.NONE, 4096,
          false, false, ModelConfig.RopeStyle.INTERLEAVED), m.config());
      assertEquals("blk.1.ffn_down.weight", m.weights().layers().get(1).wDown().name());
    }
  }

  @Test
  void checksEveryShapeAgainstTheConfig() throws IOException {
    rejects(variant(n -> n.equals("blk.1.ffn_down.weight"), w -> w.addTensor("blk.1.ffn_down.weight", GgmlType.F32,
        new long[] {256, 256}, new float[256 * 256])),
        "tensor 'blk.1.ffn_down.weight': expected shape [256, 512] but found [256, 256]");
    rejects(variant(n -> n.equals("blk.0.attn_k.weight"), w -> { }),
        "tensor 'blk.0.attn_k.weight': missing tensor (expected shape [128, 256])");
    rejects(variant(n -> n.equals("output_norm.weight"), w -> w.addTensor("output_norm.weight", GgmlType.Q8_0,
        new long[] {256}, new float[256])), "tensor 'output_norm.weight': type Q8_0 is not allowed for a vector (F32, F16 or BF16)");
    rejects(variant(n -> n.equals("blk.0.attn_q.bias"), w -> w.addTensor("blk.0.attn_q.bias", GgmlType.F32,
        new long[] {256}, new float[256])), "tensor 'blk.0.attn_k.bias': missing tensor (expected shape [128])");
    rejects(variant(n -> false, w -> w.putUint32("llama.block_count", 3)),
        "tensor 'blk.2.attn_norm.weight': missing tensor (expected shape [256])");
    rejects(variant(n -> false, w -> w.addTensor("rope_freqs.weight", GgmlType.F32, new long[] {64}, new float[64])),
        "tensor 'rope_freqs.weight': expected shape [32] but found [64]");
  }

  @Test
  void readsGgufHyperParameters() throws IOException {
    try (ModelFiles m = ModelLoader.open(variant(n -> false, w -> w.putString("llama.rope.scaling.type", "yarn")
        .putFloat32("llama.rope.scaling.factor", 4).putUint32("llama.rope.scaling.original_context_length", 1024)))) {
      assertEquals(RopeScaling.yarn(4, 1024, 32, 1, Double.NaN), m.config().ropeScaling());
    }
    try (ModelFiles m = ModelLoader.open(variant(n -> false, w -> w.putFloat32("llama.rope.scale_linear", 2)))) {
      assertEquals(RopeScaling.linear(2), m.config().ropeScaling());
    }
    rejects(variant(n -> false, w -> w.putString("llama.rope.scaling.type", "longrope")),
        "llama.rope.scaling.type: unsupported rope scaling type longrope; Selma reads none, linear, yarn");
    rejects(variant(n -> false, w -> w.putString("general.architecture", "gemma2")),
        "general.architecture: unsupported architecture gemma2; Selma supports llama (incl. Mistral) and qwen2");
    rejects(variant(n -> false, w -> w.putUint32("llama.rope.dimension_count", 32)),
        "llama.rope.dimension_count: partial rotary embeddings are not supported (rotary dimensions must equal the head size 64)");
    rejects(variant(n -> false, w -> w.putString("llama.embedding_length", "256")),
        "llama.embedding_length: expected an integer but found STRING");
  }

  @Test
  void failsClearlyOnWhatIsNotAModel() throws IOException {
    Path empty = Files.createDirectory(dir.resolve("empty"));
    assertTrue(assertThrows(IOException.class, () -> ModelLoader.open(empty)).getMessage().contains("config.json"));
    Path text = Files.writeString(dir.resolve("notes.txt"), "hello");
    rejects(text, "header: not a GGUF file (magic bytes \"GGUF\" missing)");
  }
}
