package dev.selma.engine.tokenizer;

/**
 * Lossy UTF-8 decoding with Rust's {@code String::from_utf8_lossy} rules, which Hugging Face's
 * decoders use: each maximal ill-formed subsequence (the longest prefix of a well-formed sequence,
 * or one byte) becomes one U+FFFD. The streaming decoder also needs to know where a truncated but so
 * far well-formed sequence starts, so that it can hold those bytes back.
 */
final class Utf8 {
  static final char REPLACEMENT = '\uFFFD';

  private Utf8() {}

  /**
   * Examines the sequence starting at {@code bytes[i]}: returns its length (> 0) if it is well-formed,
   * minus the length of its maximal ill-formed prefix if it is not, or 0 if the input ends inside a
   * sequence that is well-formed so far.
   */
  private static int sequence(byte[] bytes, int i, int length) {
    int b0 = bytes[i] & 0xFF;
    if (b0 < 0x80) {
      return 1;
    }
    int need;
    int lo = 0x80;
    int hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      lo = b0 == 0xE0 ? 0xA0 : 0x80; // no overlong forms
      hi = b0 == 0xED ? 0x9F : 0xBF; // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      lo = b0 == 0xF0 ? 0x90 : 0x80; // no overlong forms
      hi = b0 == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
    } else {
      return -1;
    }
    for (int k = 1; k <= need; k++) {
      if (i + k == length) {
        return 0;
      }
      int b = bytes[i + k] & 0xFF;
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
        return -k;
      }
    }
    return need + 1;
  }

  /**
   * Decodes {@code bytes[0, length)} into {@code out}. If {@code complete} is false and the input ends
   * inside a sequence that is well-formed so far, those bytes are left undecoded. Returns how many
   * bytes were consumed.
   */
  static int decode(byte[] bytes, int length, boolean complete, StringBuilder out) {
    int i = 0;
    while (i < length) {
      int n = sequence(bytes, i, length);
      if (n == 0) {
        if (!complete) {
          return i;
        }
        out.append(REPLACEMENT);
        return length;
      }
      if (n < 0) {
        out.append(REPLACEMENT);
        i -= n;
      } else {
        if (n == 1) {
          out.append((char) bytes[i]);
        } else {
          out.append(new String(bytes, i, n, java.nio.charset.StandardCharsets.UTF_8));
        }
        i += n;
      }
    }
    return length;
  }

  /** Whether {@code bytes[0, length)} is well-formed UTF-8 (Rust's {@code String::from_utf8} succeeds). */
  static boolean isWellFormed(byte[] bytes, int length) {
    for (int i = 0; i < length; ) {
      int n = sequence(bytes, i, length);
      if (n <= 0) {
        return false;
      }
      i += n;
    }
    return true;
  }
}
