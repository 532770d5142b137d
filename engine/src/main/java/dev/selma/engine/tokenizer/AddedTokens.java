package dev.selma.engine.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The added tokens of a tokenizer (special or not) and where they are found in text. As in Hugging
 * Face's {@code AddedVocabulary}: tokens with {@code normalized: false} are found in the raw text,
 * the others in each normalized stretch between those; matches are leftmost-longest and do not
 * overlap; {@code single_word} drops a match touching a letter or digit, {@code lstrip} /
 * {@code rstrip} widen it over adjacent whitespace.
 */
final class AddedTokens {

  record Token(int id, String content, boolean special, boolean lstrip, boolean rstrip, boolean singleWord,
               boolean normalized) {}

  /** Receives the pieces of a split: text ranges and added-token ids, in order. */
  interface Sink {
    void text(String text, int from, int to);

    void token(int id);
  }

  final List<Token> tokens;
  private final Matcher raw;
  private final Matcher normalized;

  /** {@code normalization} is the tokenizer's; HF looks for normalized tokens in their normalized form. */
  AddedTokens(List<Token> tokens, Normalization normalization) {
    this.tokens = List.copyOf(tokens);
    this.raw = new Matcher(tokens.stream().filter(t -> !t.normalized()).toList(), Normalization.NONE);
    this.normalized = new Matcher(tokens.stream().filter(Token::normalized).toList(), normalization);
  }

  boolean hasNormalized() {
    return !normalized.isEmpty();
  }

  /** Splits raw text (normalized tokens are looked for later, by {@link #splitNormalized}). */
  void splitRaw(String text, Sink sink) {
    raw.split(text, sink);
  }

  void splitNormalized(String text, Sink sink) {
    normalized.split(text, sink);
  }

  /** An added token as it is looked for in text. */
  private record Pattern(String text, Token token) {}

  private static final class Matcher {
    /** By first char, candidates longest first. */
    private final Pattern[][] byFirstChar = new Pattern[0x10000][];
    private final boolean empty;

    Matcher(List<Token> tokens, Normalization normalization) {
      List<Pattern> sorted = new ArrayList<>();
      for (Token t : tokens) {
        String text = normalization.apply(t.content());
        if (!text.isEmpty()) {
          sorted.add(new Pattern(text, t));
        }
      }
      sorted.sort(Comparator.comparingInt((Pattern p) -> -p.text().length()));
      for (Pattern t : sorted) {
        char c = t.text().charAt(0);
        Pattern[] old = byFirstChar[c];
        Pattern[] grown = old == null ? new Pattern[1] : Arrays.copyOf(old, old.length + 1);
        grown[grown.length - 1] = t;
        byFirstChar[c] = grown;
      }
      empty = sorted.isEmpty();
    }

    boolean isEmpty() {
      return empty;
    }

    void split(String text, Sink sink) {
      int done = 0; // end of the last piece handed to the sink
      int i = 0;
      int n = text.length();
      while (!empty && i < n) {
        Pattern[] candidates = byFirstChar[text.charAt(i)];
        Pattern found = null;
        if (candidates != null) {
          for (Pattern p : candidates) {
            if (text.startsWith(p.text(), i)) {
              found = p;
              break;
            }
          }
        }
        if (found == null) {
          i++;
          continue;
        }
        Token match = found.token();
        int start = i;
        int stop = i + found.text().length();
        i = stop;
        if (match.singleWord() && (endsWithWordChar(text, start) || startsWithWordChar(text, stop))) {
          continue;
        }
        if (match.lstrip()) {
          while (start > done && isWhitespace(text.codePointBefore(start))) {
            start -= Character.charCount(text.codePointBefore(start));
          }
        }
        if (match.rstrip()) {
          while (stop < n && isWhitespace(text.codePointAt(stop))) {
            stop += Character.charCount(text.codePointAt(stop));
          }
          i = stop;
        }
        if (start > done) {
          sink.text(text, done, start);
        }
        sink.token(match.id());
        done = stop;
      }
      if (done < n) {
        sink.text(text, done, n);
      }
    }
  }

  /** Unicode White_Space, Rust's {@code char::is_whitespace}. */
  static boolean isWhitespace(int cp) {
    return Character.isSpaceChar(cp) || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85;
  }

  /** Rust's {@code char::is_alphanumeric}: Alphabetic or a number. */
  private static boolean isWordChar(int cp) {
    int type = Character.getType(cp);
    return Character.isAlphabetic(cp) || type == Character.DECIMAL_DIGIT_NUMBER
        || type == Character.LETTER_NUMBER || type == Character.OTHER_NUMBER;
  }

  private static boolean endsWithWordChar(String text, int end) {
    return end > 0 && isWordChar(text.codePointBefore(end));
  }

  private static boolean startsWithWordChar(String text, int start) {
    return start < text.length() && isWordChar(text.codePointAt(start));
  }
}
