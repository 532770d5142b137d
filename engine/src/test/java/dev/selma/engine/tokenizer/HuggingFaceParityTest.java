package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Selma's tokenizers give exactly Hugging Face's ids and text on every generated string, for every
 * real vocabulary: encode with and without special tokens, decode with and without skipping them,
 * and decode(encode(s)) == s wherever HF round-trips.
 */
class HuggingFaceParityTest {
  static final List<String> VOCABULARIES = Vocabularies.ALL;
  private static final List<String> STRINGS = TestStrings.all();

  @ParameterizedTest
  @FieldSource("VOCABULARIES")
  void encodeAndDecodeMatchHuggingFace(String vocabulary) {
    Tokenizer selma = Vocabularies.selma(vocabulary);
    Vocabularies.Reference hf = Vocabularies.hf(vocabulary);
    assertTrue(STRINGS.size() >= 5000, "at least 5,000 strings");
    List<String> failures = new ArrayList<>();
    int roundTrips = 0;
    for (String s : STRINGS) {
      for (boolean special : new boolean[] {false, true}) {
        int[] expected = hf.encode(s, special);
        int[] actual = selma.encode(s, special);
        if (!Arrays.equals(expected, actual)) {
          failures.add("encode(" + quote(s) + ", " + special + ")\n  HF:    " + Arrays.toString(expected)
              + "\n  Selma: " + Arrays.toString(actual));
          continue;
        }
        for (boolean skip : new boolean[] {false, true}) {
          String hfText = hf.decode(expected, skip);
          String text = selma.decode(actual, skip);
          if (!hfText.equals(text)) {
            failures.add("decode(" + Arrays.toString(actual) + ", " + skip + ")\n  HF:    " + quote(hfText)
                + "\n  Selma: " + quote(text));
          }
        }
      }
      int[] ids = selma.encode(s, false);
      if (hf.decode(ids, false).equals(s)) {
        assertEquals(s, selma.decode(ids, false), "round trip");
        roundTrips++;
      }
    }
    assertEquals(List.of(), failures.subList(0, Math.min(20, failures.size())),
        failures.size() + " of " + STRINGS.size() + " strings differ from HF in " + vocabulary);
    assertTrue(roundTrips > STRINGS.size() / 2, "HF round-trips most strings: " + roundTrips);
  }

  static String quote(String s) {
    StringBuilder sb = new StringBuilder("\"");
    s.codePoints().forEach(cp -> {
      if (cp < 0x20 || cp > 0x7E) {
        sb.append(String.format("\\u{%X}", cp));
      } else {
        sb.appendCodePoint(cp);
      }
    });
    return sb.append('"').toString();
  }
}
