package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.selma.engine.model.GgufMetadata;
import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import dev.selma.engine.model.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A vocabulary Selma cannot use gives an error naming the file, the section and the problem. */
class MalformedVocabularyTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir
  Path dir;

  /** A tiny valid SentencePiece-style tokenizer.json, as the Llama 2 / Mistral files are laid out. */
  private static ObjectNode tiny() throws IOException {
    return (ObjectNode) JSON.readTree("""
        {"version": "1.0",
         "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}],
         "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
         "pre_tokenizer": null,
         "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                            {"Sequence": {"id": "A", "type_id": 0}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
         "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                     {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
         "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": false, "fuse_unk": true,
                   "vocab": {"<unk>": 0, "<s>": 1, "▁": 2, "a": 3, "b": 4, "▁a": 5, "ab": 6, "▁ab": 7},
                   "merges": ["▁ a", ["a", "b"], "▁a b"]}}
        """);
  }

  private Path write(String json) throws IOException {
    Path file = dir.resolve("tokenizer.json");
    Files.writeString(file, json);
    return file;
  }

  private Path write(Consumer<ObjectNode> change) throws IOException {
    ObjectNode root = tiny();
    change.accept(root);
    return write(JSON.writeValueAsString(root));
  }

  private static void assertFails(Path file, String... parts) {
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizer.fromHuggingFace(file));
    assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "expected \"" + p + "\" in: " + e.getMessage());
    }
  }

  @Test
  void tinyTokenizerLoads() throws IOException {
    Tokenizer t = Tokenizer.fromHuggingFace(write(r -> { }));
    // "▁ab▁c▁a": "c" is not in the vocabulary and there is no byte fallback
    assertArrayEquals(new int[] {1, 7, 2, 0, 5}, t.encode("ab c a", true));
  }

  @Test
  void truncatedJson() throws IOException {
    String json = JSON.writeValueAsString(tiny());
    assertFails(write(json.substring(0, json.length() / 2)), "malformed JSON", "line 1");
  }

  @Test
  void missingFile() {
    assertFails(dir.resolve("nothing-here.json"), "cannot read");
  }

  @Test
  void missingSections() throws IOException {
    assertFails(write(r -> r.remove("model")), "model", "missing section");
    assertFails(write(r -> ((ObjectNode) r.get("model")).remove("vocab")), "model.vocab", "missing vocabulary");
    assertFails(write(r -> ((ObjectNode) r.get("model")).remove("merges")), "model.merges", "missing merges");
    assertFails(write(r -> r.remove("decoder")), "decoder", "missing section");
    assertFails(write("[1, 2, 3]"), "expected a JSON object");
  }

  @Test
  void mergesReferringToUnknownTokens() throws IOException {
    assertFails(write(r -> ((ArrayNode) r.get("model").get("merges")).add("a z")),
        "merges", "merge 3", "\"z\", which is not in the vocabulary");
    assertFails(write(r -> ((ArrayNode) r.get("model").get("merges")).add("b a")),
        "merges", "\"ba\", which is not in the vocabulary");
    assertFails(write(r -> ((ArrayNode) r.get("model").get("merges")).add("a b c")),
        "merge 3 is \"a b c\"", "expected \"a b\" or [\"a\", \"b\"]");
  }

  @Test
  void unsupportedComponents() throws IOException {
    assertFails(write(r -> ((ObjectNode) r.get("model")).put("type", "WordPiece")),
        "model.type", "unsupported model type WordPiece");
    assertFails(write(r -> ((ObjectNode) r.get("model")).put("type", "Unigram")), "unsupported model type Unigram");
    assertFails(write(r -> r.set("normalizer", JSON.createObjectNode().put("type", "Lowercase"))),
        "normalizer", "unsupported normalizer type Lowercase");
    assertFails(write(r -> r.set("pre_tokenizer", JSON.createObjectNode().put("type", "Whitespace"))),
        "pre_tokenizer", "unsupported pre-tokenizer type Whitespace");
    assertFails(write(r -> {
      ObjectNode split = r.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Isolated");
      split.putObject("pattern").put("Regex", "\\w+");
    }), "pre_tokenizer", "unsupported Split pattern");
    assertFails(write(r -> r.set("post_processor", JSON.createObjectNode().put("type", "RobertaProcessing"))),
        "post_processor", "unsupported post-processor type RobertaProcessing");
    assertFails(write(r -> r.set("decoder", JSON.createObjectNode().put("type", "WordPiece"))),
        "decoder", "unsupported decoder");
    assertFails(write(r -> ((ObjectNode) r.get("model")).put("dropout", 0.1)), "model.dropout");
  }

  @Test
  void badSpecialTokens() throws IOException {
    Path file = write(r -> { });
    Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<bos>\"}");
    assertFails(file, "token <bos> is not in the vocabulary");
    Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": ");
    ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizer.fromHuggingFace(file));
    assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("malformed JSON"),
        e.getMessage());
  }

  private Map<String, Value> ggufTiny() throws IOException {
    return new LinkedHashMap<>(Tokenizer.fromHuggingFace(tinyFile()).toGgufMetadata());
  }

  private Path tinyFile() throws IOException {
    Path file = Files.createDirectories(dir.resolve("gguf")).resolve("tokenizer.json");
    Files.writeString(file, JSON.writeValueAsString(tiny()));
    Files.writeString(file.resolveSibling("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
    return file;
  }

  private static void assertGgufFails(Map<String, Value> md, String... parts) {
    Path file = Path.of("broken.gguf");
    ModelFormatException e = assertThrows(ModelFormatException.class,
        () -> Tokenizer.fromGguf(new GgufMetadata(file, md)));
    assertTrue(e.getMessage().startsWith("broken.gguf"), e.getMessage());
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "expected \"" + p + "\" in: " + e.getMessage());
    }
  }

  private static Value string(String s) {
    return new Value(ValueType.STRING, ValueType.STRING, s);
  }

  @Test
  void badGgufMetadata() throws IOException {
    Map<String, Value> md = ggufTiny();
    md.put("tokenizer.ggml.model", string("bert"));
    assertGgufFails(md, "tokenizer.ggml.model", "unsupported tokenizer model bert");

    md = ggufTiny();
    md.put("tokenizer.ggml.model", string("gpt2"));
    md.put("tokenizer.ggml.pre", string("gpt-4o"));
    assertGgufFails(md, "tokenizer.ggml.pre", "unsupported pre-tokenizer gpt-4o");

    md = ggufTiny();
    md.remove("tokenizer.ggml.tokens");
    assertGgufFails(md, "tokenizer.ggml.tokens", "missing metadata key");

    md = ggufTiny();
    md.put("tokenizer.ggml.bos_token_id", new Value(ValueType.UINT32, ValueType.UINT32, 99L));
    assertGgufFails(md, "tokenizer.ggml.bos_token_id", "token id 99 is outside the vocabulary");

    md = ggufTiny();
    md.put("tokenizer.ggml.merges", new Value(ValueType.ARRAY, ValueType.STRING, new String[] {"a b", "ab"}));
    assertGgufFails(md, "tokenizer.ggml.merges", "merge 1 is \"ab\"");

    md = ggufTiny();
    md.put("tokenizer.ggml.merges", new Value(ValueType.ARRAY, ValueType.STRING, new String[] {"a q"}));
    assertGgufFails(md, "merge 0", "\"q\", which is not in the vocabulary");

    md = ggufTiny();
    md.remove("tokenizer.ggml.merges");
    md.remove("tokenizer.ggml.scores");
    assertGgufFails(md, "tokenizer.ggml.scores", "missing metadata key");
  }
}
