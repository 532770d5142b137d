package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.selma.engine.model.GgufMetadata;
import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import dev.selma.engine.model.ModelFormatException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * tokenizer.json → GGUF metadata → tokenizer gives the same ids, text and special tokens as the
 * tokenizer.json tokenizer, on every generated string; the metadata follows llama.cpp's conventions.
 */
class GgufRoundTripTest {
  static final List<String> VOCABULARIES = Vocabularies.ALL;
  private static final List<String> STRINGS = TestStrings.all();

  @ParameterizedTest
  @FieldSource("VOCABULARIES")
  void ggufTokenizerEncodesIdentically(String vocabulary) throws ModelFormatException {
    Tokenizer hf = Vocabularies.selma(vocabulary);
    Map<String, Value> md = hf.toGgufMetadata();
    Tokenizer gguf = Tokenizer.fromGguf(new GgufMetadata(Path.of(vocabulary + ".gguf"), md));

    assertEquals(hf.kind(), gguf.kind());
    assertEquals(hf.vocabSize(), gguf.vocabSize());
    assertEquals(hf.bosId(), gguf.bosId());
    assertArrayEquals(hf.eosIds(), gguf.eosIds());
    assertEquals(hf.bosToken(), gguf.bosToken());
    assertEquals(hf.eosToken(), gguf.eosToken());
    assertEquals(hf.chatTemplate(), gguf.chatTemplate());
    List<String> failures = new ArrayList<>();
    for (String s : STRINGS) {
      for (boolean special : new boolean[] {false, true}) {
        int[] expected = hf.encode(s, special);
        int[] actual = gguf.encode(s, special);
        if (!Arrays.equals(expected, actual)) {
          failures.add(HuggingFaceParityTest.quote(s) + " " + special);
        } else if (!hf.decode(expected, !special).equals(gguf.decode(actual, !special))) {
          failures.add("decode " + HuggingFaceParityTest.quote(s));
        }
      }
    }
    assertEquals(List.of(), failures.subList(0, Math.min(20, failures.size())), failures.size() + " differ");
  }

  @ParameterizedTest
  @FieldSource("VOCABULARIES")
  void metadataFollowsLlamaCppConventions(String vocabulary) {
    Tokenizer t = Vocabularies.selma(vocabulary);
    Map<String, Value> md = t.toGgufMetadata();
    boolean byteLevel = t.kind() == Tokenizer.Kind.BYTE_LEVEL_BPE;
    assertEquals(byteLevel ? "gpt2" : "llama", md.get("tokenizer.ggml.model").value());
    assertEquals(switch (vocabulary) {
      case "llama3", "llama3_1" -> "llama-bpe";
      case "qwen3" -> "qwen2";
      default -> "default";
    }, md.get("tokenizer.ggml.pre").value());
    String[] tokens = (String[]) md.get("tokenizer.ggml.tokens").value();
    long[] types = (long[]) md.get("tokenizer.ggml.token_type").value();
    assertEquals(ValueType.INT32, md.get("tokenizer.ggml.token_type").elementType());
    assertEquals(t.vocabSize(), tokens.length);
    int bos = t.bosId().orElse(-1);
    if (bos >= 0) {
      assertEquals(3L, types[bos], "BOS is a control token");
      assertEquals(new Value(ValueType.UINT32, ValueType.UINT32, (long) bos), md.get("tokenizer.ggml.bos_token_id"));
    }
    assertEquals(1L, types[t.encode("Hello", false)[0]], "an ordinary token is normal");
    if (!byteLevel) {
      assertEquals(6L, types[t.tokenId("<0x0A>").getAsInt()], "byte-fallback tokens have type BYTE");
      assertEquals(2L, types[0], "<unk> has type UNKNOWN");
      assertEquals(true, md.get("tokenizer.ggml.add_space_prefix").value());
    }
    if (vocabulary.equals("qwen3")) {
      assertEquals(4L, types[t.tokenId("<think>").getAsInt()], "non-special added tokens are user-defined");
    }
    assertEquals(!vocabulary.equals("llama3") && !vocabulary.equals("qwen3"),
        md.get("tokenizer.ggml.add_bos_token").value());
  }

  @org.junit.jupiter.api.Test
  void paddedVocabularyDecodesPaddingToNothing() throws ModelFormatException {
    Tokenizer qwen = Vocabularies.selma("qwen3");
    Map<String, Value> md = qwen.toGgufMetadata(151936);
    String[] tokens = (String[]) md.get("tokenizer.ggml.tokens").value();
    assertEquals("[PAD151700]", tokens[151700]);
    assertEquals(5L, ((long[]) md.get("tokenizer.ggml.token_type").value())[151700]);
    Tokenizer gguf = Tokenizer.fromGguf(new GgufMetadata(Path.of("qwen3-padded.gguf"), md));
    assertEquals(151936, gguf.vocabSize());
    for (String s : STRINGS.subList(0, 500)) {
      assertArrayEquals(qwen.encode(s, true), gguf.encode(s, true), s);
    }
    assertEquals("Hello", gguf.decode(new int[] {9707, 151700}, false));
    assertEquals(java.util.OptionalInt.empty(), gguf.tokenId("[PAD151700]"));
  }

  /**
   * Without merges, a SentencePiece GGUF is merged by token score, as llama.cpp does; with the
   * scores Selma writes (merge order), that agrees with HF's merge ranks on Meta's Llama 2 vocabulary.
   */
  @ParameterizedTest
  @FieldSource("SENTENCEPIECE")
  void scoreBasedMergingAgreesWithMergeRanks(String vocabulary) throws ModelFormatException {
    Tokenizer hf = Vocabularies.selma(vocabulary);
    Map<String, Value> md = new LinkedHashMap<>(hf.toGgufMetadata());
    md.remove("tokenizer.ggml.merges");
    Tokenizer scored = Tokenizer.fromGguf(new GgufMetadata(Path.of(vocabulary + "-scores.gguf"), md));
    List<String> failures = new ArrayList<>();
    for (String s : STRINGS) {
      if (!Arrays.equals(hf.encode(s, true), scored.encode(s, true))) {
        failures.add(HuggingFaceParityTest.quote(s));
      }
    }
    assertEquals(List.of(), failures.subList(0, Math.min(20, failures.size())), failures.size() + " differ");
  }

  static final List<String> SENTENCEPIECE = List.of("llama2", "mistral");
}
