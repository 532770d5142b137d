package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The non-legacy way tokenizer.json files write SentencePiece's space convention — a Metaspace
 * pre-tokenizer (prepend "▁" always, only at the start of the input, or never; optionally splitting at
 * every "▁") and a Metaspace decoder — gives HF's ids and text. The real files use the legacy
 * normalizer, so the test rewrites Mistral's tokenizer.json in each Metaspace style and compares
 * with HF on that file, on all generated strings.
 */
class MetaspaceTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir
  Path dir;

  @ParameterizedTest
  @CsvSource({
      "first, false, Sequence",  // what transformers writes for LlamaTokenizerFast with legacy=false
      "always, true, Metaspace", // older files: split at every "▁", Metaspace decoder
      "never, false, Metaspace",
      "first, true, Metaspace",
  })
  void metaspaceMatchesHuggingFace(String prependScheme, boolean split, String decoder) throws IOException {
    ObjectNode root = (ObjectNode) JSON.readTree(Vocabularies.dir("mistral").resolve("tokenizer.json").toFile());
    root.putNull("normalizer");
    ObjectNode pre = root.putObject("pre_tokenizer");
    pre.put("type", "Metaspace").put("replacement", "\u2581").put("prepend_scheme", prependScheme).put("split", split);
    if (decoder.equals("Metaspace")) {
      root.putObject("decoder").put("type", "Metaspace").put("replacement", "\u2581")
          .put("prepend_scheme", prependScheme).put("split", split);
    }
    Path file = dir.resolve("tokenizer.json");
    JSON.writeValue(file.toFile(), root);

    Tokenizer selma = Tokenizer.fromHuggingFace(file);
    Vocabularies.Reference hf = new Vocabularies.Reference(file);
    List<String> failures = new ArrayList<>();
    for (String s : TestStrings.all()) {
      for (boolean special : new boolean[] {false, true}) {
        int[] expected = hf.encode(s, special);
        int[] actual = selma.encode(s, special);
        if (!Arrays.equals(expected, actual)) {
          failures.add(HuggingFaceParityTest.quote(s) + "\n  HF:    " + Arrays.toString(expected)
              + "\n  Selma: " + Arrays.toString(actual));
          continue;
        }
        for (boolean skip : new boolean[] {false, true}) {
          String text = hf.decode(expected, skip);
          if (!text.equals(selma.decode(actual, skip))) {
            failures.add("decode " + Arrays.toString(actual) + "\n  HF:    " + HuggingFaceParityTest.quote(text)
                + "\n  Selma: " + HuggingFaceParityTest.quote(selma.decode(actual, skip)));
          }
        }
      }
    }
    assertEquals(List.of(), failures.subList(0, Math.min(10, failures.size())), failures.size() + " differ");
    UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, selma::toGgufMetadata);
    assertTrue(e.getMessage().contains("Metaspace"), e.getMessage());
  }
}
