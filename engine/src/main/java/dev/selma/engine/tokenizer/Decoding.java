package dev.selma.engine.tokenizer;

import java.util.List;

/**
 * How ids become text: the two decoder shapes of the supported tokenizer.json files.
 * <ul>
 *   <li>byte-level: each token's characters stand for bytes ({@link ByteLevel}); the bytes of all
 *       tokens are decoded together as lossy UTF-8;</li>
 *   <li>SentencePiece-style, HF's {@code Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", n, 0)]}
 *       or {@code Metaspace}:
 *       replacements inside each token, runs of {@code <0xNN>} tokens decoded as UTF-8 (one U+FFFD per
 *       byte if the run is not well-formed, as HF does), then up to n leading spaces removed from the
 *       whole text (the dummy prefix added when encoding).</li>
 * </ul>
 */
record Decoding(boolean byteLevel, List<Replacement> replacements, boolean byteFallback, int stripLeadingSpaces) {

  /**
   * Replaces {@code from} by {@code to} in each token; in the first token by {@code firstTo} (HF's
   * Metaspace decoder drops every "▁" of the first token, where the encoder had added one).
   */
  record Replacement(String from, String to, String firstTo) {
    Replacement(String from, String to) {
      this(from, to, to);
    }
  }

  static final Decoding BYTE_LEVEL = new Decoding(true, List.of(), false, 0);

  String replace(String token, boolean first) {
    for (Replacement r : replacements) {
      token = token.replace(r.from(), first ? r.firstTo() : r.to());
    }
    return token;
  }

  /** The byte of a byte-fallback token such as {@code <0x0A>}, or -1 (HF's parse: 6 chars, hex digits). */
  static int fallbackByte(String token) {
    if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') {
      return -1;
    }
    int hi = Character.digit(token.charAt(3), 16);
    int lo = Character.digit(token.charAt(4), 16);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
}
