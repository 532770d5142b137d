package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * The streaming decoder, fed ids one at a time, only ever returns text that is final: for text that
 * round-trips, every piece extends a prefix of the original text (so no U+FFFD for a character cut
 * between tokens, no half of a byte-fallback run), and pieces plus {@code flush()} equal
 * {@code decode} of the same ids, also for prefixes of the ids that end inside a character.
 */
class StreamingDecoderTest {
  static final List<String> VOCABULARIES = Vocabularies.ALL;

  @ParameterizedTest
  @FieldSource("VOCABULARIES")
  void streamsOnlyCompleteText(String vocabulary) {
    Tokenizer t = Vocabularies.selma(vocabulary);
    Random r = new Random(99);
    int checked = 0;
    for (int i = 0; i < 600; i++) {
      String s = switch (i % 5) {
        case 0 -> TestStrings.cjk(r);
        case 1 -> TestStrings.emoji(r);
        case 2 -> TestStrings.marks(r);
        case 3 -> TestStrings.randomUnicode(r);
        default -> TestStrings.mixed(r);
      };
      int[] ids = t.encode(s, true);
      for (boolean skip : new boolean[] {false, true}) {
        // the whole sequence, then a random prefix that may end inside a character
        for (int[] part : new int[][] {ids, Arrays.copyOf(ids, r.nextInt(ids.length + 1))}) {
          StreamingDecoder d = t.streamingDecoder(skip);
          StringBuilder streamed = new StringBuilder();
          String expected = t.decode(part, skip);
          boolean roundTrips = t.decode(ids, true).equals(s);
          for (int id : part) {
            streamed.append(d.next(id));
            if (roundTrips && skip) {
              assertTrue(s.startsWith(streamed.toString()), () -> "streamed text is not final: "
                  + HuggingFaceParityTest.quote(streamed.toString()) + " for " + HuggingFaceParityTest.quote(s));
            }
          }
          if (roundTrips) {
            assertFalse(streamed.toString().contains("\uFFFD"), "no replacement character before flush");
          }
          streamed.append(d.flush());
          assertEquals(expected, streamed.toString());
          checked++;
        }
      }
    }
    assertEquals(2400, checked);
  }
}
