package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Added tokens with HF's matching options — {@code lstrip}, {@code rstrip}, {@code single_word},
 * {@code normalized} — are found exactly where Hugging Face finds them. The real vocabularies use
 * none of these options, so the test adds such tokens to a copy of a real tokenizer.json
 * (SentencePiece: Mistral; byte-level with NFC: Qwen3) and compares with HF on that copy.
 */
class AddedTokenOptionsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String[] PIECES = {
      "<mask>", "[SEP]", "word", "hello world", "ZZ", "Gru\u0308ße", " ", "  ", "\n", "\t", "a", "sword", "words",
      "word.", "(word)", "hello  world", "Hello world", "Grüße", "x", "1", "é", "日本",
  };
  @TempDir
  Path dir;

  @ParameterizedTest
  @ValueSource(strings = {"mistral", "qwen3"})
  void addedTokenOptionsMatchHuggingFace(String vocabulary) throws IOException {
    ObjectNode root = (ObjectNode) JSON.readTree(Vocabularies.dir(vocabulary).resolve("tokenizer.json").toFile());
    ArrayNode added = (ArrayNode) root.get("added_tokens");
    int next = Vocabularies.selma(vocabulary).vocabSize();
    add(added, next, "<mask>", true, false, false, false, true);
    add(added, next + 1, "[SEP]", false, true, false, false, true);
    add(added, next + 2, "word", false, false, true, false, false); // in the vocabulary: HF keeps the model's id
    add(added, next + 3, "hello world", false, false, false, true, false);
    add(added, next + 4, "ZZ", true, true, false, false, false);
    add(added, next + 5, "Gru\u0308ße", false, false, false, true, false);
    Path file = dir.resolve("tokenizer.json");
    JSON.writeValue(file.toFile(), root);

    Tokenizer selma = Tokenizer.fromHuggingFace(file);
    Vocabularies.Reference hf = new Vocabularies.Reference(file);
    Random r = new Random(7);
    List<String> failures = new ArrayList<>();
    for (int i = 0; i < 1500; i++) {
      StringBuilder sb = new StringBuilder();
      int n = 1 + r.nextInt(8);
      for (int k = 0; k < n; k++) {
        sb.append(PIECES[r.nextInt(PIECES.length)]);
      }
      String s = sb.toString();
      for (boolean special : new boolean[] {false, true}) {
        int[] expected = hf.encode(s, special);
        int[] actual = selma.encode(s, special);
        if (!Arrays.equals(expected, actual)) {
          failures.add(HuggingFaceParityTest.quote(s) + "\n  HF:    " + Arrays.toString(expected)
              + "\n  Selma: " + Arrays.toString(actual));
        } else if (!hf.decode(expected, !special).equals(selma.decode(actual, !special))) {
          failures.add("decode " + HuggingFaceParityTest.quote(s));
        }
      }
    }
    assertEquals(List.of(), failures.subList(0, Math.min(10, failures.size())), failures.size() + " differ");
  }

  private static void add(ArrayNode added, int id, String content, boolean lstrip, boolean rstrip, boolean singleWord,
      boolean normalized, boolean special) {
    added.addObject().put("id", id).put("content", content).put("single_word", singleWord).put("lstrip", lstrip)
        .put("rstrip", rstrip).put("normalized", normalized).put("special", special);
  }
}
