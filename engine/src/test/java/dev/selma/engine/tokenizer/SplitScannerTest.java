package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The hand-written pre-tokenizer scanner splits every generated string exactly where the
 * tokenizer.json regex does when run by {@code java.util.regex} (with Unicode classes, so that
 * {@code \s} is White_Space and case folding is Unicode's, as in Oniguruma).
 */
class SplitScannerTest {

  @ParameterizedTest
  @EnumSource(SplitScanner.class)
  void scannerSplitsLikeTheRegex(SplitScanner scanner) {
    Pattern pattern = Pattern.compile(scanner.regex, Pattern.UNICODE_CHARACTER_CLASS);
    for (String s : TestStrings.all()) {
      assertEquals(regexSplit(pattern, s), scannerSplit(scanner, s), () -> HuggingFaceParityTest.quote(s));
    }
  }

  private static List<String> regexSplit(Pattern pattern, String s) {
    List<String> pieces = new ArrayList<>();
    Matcher m = pattern.matcher(s);
    int done = 0;
    while (m.find()) {
      if (m.start() > done) {
        pieces.add(s.substring(done, m.start())); // text no alternative matches stays a piece of its own
      }
      pieces.add(m.group());
      done = m.end();
    }
    if (done < s.length()) {
      pieces.add(s.substring(done));
    }
    return pieces;
  }

  private static List<String> scannerSplit(SplitScanner scanner, String s) {
    List<String> pieces = new ArrayList<>();
    for (int i = 0; i < s.length(); ) {
      int end = scanner.next(s, i, s.length());
      pieces.add(s.substring(i, end));
      i = end;
    }
    return pieces;
  }
}
