package dev.selma.engine.tokenizer;

/**
 * The pre-tokenizer split of Llama 3 and Qwen2/Qwen3, written out by hand. The tokenizer.json files
 * give it as a regular expression run by Oniguruma, "Isolated" (every match is a pre-token):
 *
 * <pre>
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * </pre>
 *
 * with {@code \p{N}} instead of {@code \p{N}{1,3}} for Qwen. Every character is matched by one of
 * the alternatives, so the matches tile the text. {@link #next} returns the end of the match starting
 * at a position, trying the alternatives in order as the regex engine does; this is 4–9 times
 * faster than {@code java.util.regex} (docs/benchmarks.md), and a test checks that both agree.
 */
enum SplitScanner {
  LLAMA3(3,
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
          + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
  QWEN2(1,
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
          + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");

  private static final byte LETTER = 1;
  private static final byte NUMBER = 2;
  private static final byte SPACE = 4; // Unicode White_Space, Oniguruma's \s
  private static final byte NEWLINE = 8; // \r or \n
  private static final byte[] BMP = new byte[0x10000];

  static {
    for (int c = 0; c < BMP.length; c++) {
      BMP[c] = classify(c);
    }
  }

  private final int maxDigits;
  /** The regular expression as it appears in tokenizer.json. */
  final String regex;

  SplitScanner(int maxDigits, String regex) {
    this.maxDigits = maxDigits;
    this.regex = regex;
  }

  /** The scanner for a Split regex from tokenizer.json, or null if it is not one we know. */
  static SplitScanner forRegex(String regex) {
    for (SplitScanner s : values()) {
      if (s.regex.equals(regex)) {
        return s;
      }
    }
    return null;
  }

  private static byte classify(int c) {
    return switch (Character.getType(c)) {
      case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
           Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
      case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
      default -> {
        if (c == '\r' || c == '\n') {
          yield (byte) (SPACE | NEWLINE);
        }
        // White_Space: the separators (Zs, Zl, Zp), the C0 controls \t..\r and NEL.
        boolean space = Character.isSpaceChar(c) || (c >= 0x09 && c <= 0x0D) || c == 0x85;
        yield space ? SPACE : 0;
      }
    };
  }

  private static int classOf(int cp) {
    return cp < 0x10000 ? BMP[cp] : classify(cp);
  }

  private static int cpAt(CharSequence s, int i, int end) {
    char c = s.charAt(i);
    if (Character.isHighSurrogate(c) && i + 1 < end) {
      char d = s.charAt(i + 1);
      if (Character.isLowSurrogate(d)) {
        return Character.toCodePoint(c, d);
      }
    }
    return c;
  }

  private static int size(int cp) {
    return cp >= 0x10000 ? 2 : 1;
  }

  /** Returns the end of the pre-token that starts at {@code i < end}. */
  int next(CharSequence s, int i, int end) {
    int c = cpAt(s, i, end);
    int after = i + size(c);
    int cls = classOf(c);

    // (?i:'s|'t|'re|'ve|'m|'ll|'d); case folding makes 's' also match U+017F (long s).
    if (c == '\'' && after < end) {
      char d = s.charAt(after);
      switch (d) {
        case 's', 'S', '\u017F', 't', 'T', 'm', 'M', 'd', 'D' -> {
          return after + 1;
        }
        case 'r', 'R', 'v', 'V' -> {
          if (after + 1 < end && (s.charAt(after + 1) | 0x20) == 'e') {
            return after + 2;
          }
        }
        case 'l', 'L' -> {
          if (after + 1 < end && (s.charAt(after + 1) | 0x20) == 'l') {
            return after + 2;
          }
        }
        default -> { }
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if ((cls & LETTER) != 0) {
      return letters(s, after, end);
    }
    if ((cls & (NUMBER | NEWLINE)) == 0 && after < end && (classOf(cpAt(s, after, end)) & LETTER) != 0) {
      return letters(s, after, end);
    }
    // \p{N}{1,maxDigits}
    if ((cls & NUMBER) != 0) {
      int j = after;
      for (int n = 1; n < maxDigits && j < end; n++) {
        int d = cpAt(s, j, end);
        if ((classOf(d) & NUMBER) == 0) {
          break;
        }
        j += size(d);
      }
      return j;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    int j = c == ' ' ? after : i;
    if (j < end && classOf(cpAt(s, j, end)) == 0) {
      while (j < end) {
        int d = cpAt(s, j, end);
        if (classOf(d) != 0) {
          break;
        }
        j += size(d);
      }
      while (j < end && (s.charAt(j) == '\r' || s.charAt(j) == '\n')) {
        j++;
      }
      return j;
    }
    // Only whitespace is left; every White_Space character is in the BMP.
    int spaceEnd = i;
    int lastNewline = -1;
    while (spaceEnd < end && (classOf(s.charAt(spaceEnd)) & SPACE) != 0) {
      if ((BMP[s.charAt(spaceEnd)] & NEWLINE) != 0) {
        lastNewline = spaceEnd;
      }
      spaceEnd++;
    }
    // \s*[\r\n]+ : up to and including the run's last newline.
    if (lastNewline >= 0) {
      return lastNewline + 1;
    }
    // \s+(?!\S) : the run, minus its last character when a non-space follows, if that leaves any.
    if (spaceEnd == end || spaceEnd - 1 > i) {
      return spaceEnd == end ? end : spaceEnd - 1;
    }
    // \s+
    return spaceEnd;
  }

  private static int letters(CharSequence s, int j, int end) {
    while (j < end) {
      int d = cpAt(s, j, end);
      if ((classOf(d) & LETTER) == 0) {
        break;
      }
      j += size(d);
    }
    return j;
  }
}
