package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/**
 * Known ids for each real vocabulary (from docs/models-data-notes §1 and llama-tokenizer-js's own
 * test cases), and the facts the chat template and generation rely on: BOS/EOS, sizes, kinds.
 */
class GoldenIdsTest {
  private static final String DOG = "Hello, my dog is cute";
  private static final String PASS_KEY = "The pass key is 71432. Remember it. 71432 is the pass key.";

  @Test
  void llama3AddsNoBosButLlama31Does() {
    int[] dog = {9906, 11, 856, 5679, 374, 19369};
    assertArrayEquals(dog, Vocabularies.selma("llama3").encode(DOG, true));
    assertArrayEquals(new int[] {791, 1522, 1401, 374, 220, 23193, 843, 13, 20474, 433, 13, 220, 23193, 843, 374, 279,
        1522, 1401, 13}, Vocabularies.selma("llama3").encode(PASS_KEY, false));
    int[] withBos = new int[dog.length + 1];
    withBos[0] = 128000;
    System.arraycopy(dog, 0, withBos, 1, dog.length);
    assertArrayEquals(withBos, Vocabularies.selma("llama3_1").encode(DOG, true));
    assertArrayEquals(dog, Vocabularies.selma("llama3_1").encode(DOG, false));
  }

  @Test
  void llama3SpecialTokensInTextBecomeTheirIds() {
    Tokenizer t = Vocabularies.selma("llama3_1");
    assertArrayEquals(new int[] {128000, 128006, 882, 128007, 271, 13347, 128009},
        t.encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true));
  }

  @Test
  void mistralAndQwen3() {
    assertArrayEquals(new int[] {1, 22557, 28725, 586, 3914, 349, 17949}, Vocabularies.selma("mistral").encode(DOG, true));
    assertArrayEquals(new int[] {1, 415, 1455, 1945, 349, 28705, 28787, 28740, 28781, 28770, 28750, 28723},
        Arrays.copyOf(Vocabularies.selma("mistral").encode(PASS_KEY, true), 12));
    assertArrayEquals(new int[] {9707, 11, 847, 5562, 374, 18838}, Vocabularies.selma("qwen3").encode(DOG, true));
    assertArrayEquals(new int[] {785, 1494, 1376, 374, 220, 22, 16, 19, 18, 17, 13},
        Arrays.copyOf(Vocabularies.selma("qwen3").encode(PASS_KEY, true), 11));
    assertArrayEquals(new int[] {151644, 872, 198, 9707, 151645},
        Vocabularies.selma("qwen3").encode("<|im_start|>user\nHello<|im_end|>", true));
  }

  /** llama-tokenizer-js's test cases for Meta's Llama 2 vocabulary, which tools/ rebuilt as tokenizer.json. */
  @Test
  void metaLlama2() {
    Tokenizer t = Vocabularies.selma("llama2");
    assertArrayEquals(new int[] {1, 15043, 29892, 590, 11203, 338, 274, 1082}, t.encode(DOG, true));
    String[] texts = {"grabbed", " grabbed", "           grabbed", "\n", " \n", "\ttabs\t\t\t\tout here", "ax\n####\nboo",
        "镇", "🦙", "🦙Ꙋ", "Ꙋ🦙"};
    int[][] ids = {
        {1, 2646, 1327, 287}, {1, 29871, 2646, 1327, 287}, {1, 9651, 2646, 1327, 287}, {1, 29871, 13}, {1, 259, 13},
        {1, 29871, 12, 21175, 12, 12, 12, 12, 449, 1244}, {1, 4853, 13, 4136, 13, 833, 29877}, {1, 29871, 30411},
        {1, 29871, 243, 162, 169, 156}, {1, 29871, 243, 162, 169, 156, 237, 156, 141},
        {1, 29871, 237, 156, 141, 243, 162, 169, 156}};
    for (int i = 0; i < texts.length; i++) {
      assertArrayEquals(ids[i], t.encode(texts[i], true), texts[i]);
      assertEquals(texts[i], t.decode(ids[i], true));
    }
    assertEquals("<s> grabbed", t.decode(new int[] {1, 2646, 1327, 287}, false));
  }

  @Test
  void specialTokensAndSizes() {
    Tokenizer llama3 = Vocabularies.selma("llama3");
    assertEquals(Tokenizer.Kind.BYTE_LEVEL_BPE, llama3.kind());
    assertEquals(128256, llama3.vocabSize());
    assertEquals(OptionalInt.of(128000), llama3.bosId());
    assertArrayEquals(new int[] {128001}, llama3.eosIds());
    assertEquals(Optional.of("<|begin_of_text|>"), llama3.bosToken());
    assertEquals("Ġdog", llama3.token(5679));
    assertEquals(OptionalInt.of(5679), llama3.tokenId("Ġdog"));
    assertEquals(OptionalInt.empty(), llama3.tokenId("no such token"));
    assertTrue(llama3.isSpecial(128000));
    assertFalse(llama3.isSpecial(5679));
    assertTrue(llama3.description().contains("byte-level BPE, 128256 tokens, llama3 pre-tokenizer"), llama3.description());
    assertThrows(IllegalArgumentException.class, () -> llama3.token(128256));

    Tokenizer llama31 = Vocabularies.selma("llama3_1");
    assertArrayEquals(new int[] {128009}, llama31.eosIds());
    assertEquals(Optional.of("<|eot_id|>"), llama31.eosToken());
    assertTrue(llama31.chatTemplate().orElseThrow().contains("start_header_id"));

    Tokenizer qwen = Vocabularies.selma("qwen3");
    assertEquals(151669, qwen.vocabSize());
    assertEquals(OptionalInt.empty(), qwen.bosId());
    assertEquals(Optional.empty(), qwen.bosToken());
    assertArrayEquals(new int[] {151645}, qwen.eosIds());
    assertFalse(qwen.isSpecial(qwen.tokenId("<think>").getAsInt()), "<think> is an added token but not special");

    for (String sp : new String[] {"llama2", "mistral"}) {
      Tokenizer t = Vocabularies.selma(sp);
      assertEquals(Tokenizer.Kind.SENTENCEPIECE_BPE, t.kind());
      assertEquals(32000, t.vocabSize());
      assertEquals(OptionalInt.of(1), t.bosId());
      assertArrayEquals(new int[] {2}, t.eosIds());
      assertEquals(Optional.of("</s>"), t.eosToken());
    }
  }

  @Test
  void decodeIgnoresIdsWithoutTokensAsHuggingFaceDoes() {
    Tokenizer qwen = Vocabularies.selma("qwen3");
    assertEquals("Hello", qwen.decode(new int[] {9707, 151900, -1}, false));
  }
}
