package dev.selma.engine.tokenizer;

/**
 * GPT-2's reversible byte ↔ character mapping, used by byte-level BPE vocabularies (Llama 3, Qwen).
 * Every byte gets a printable character so that vocabulary entries are plain strings: the 188
 * printable Latin-1 bytes map to themselves, the other 68 (controls, space, soft hyphen …) to
 * U+0100 onwards in byte order. A space therefore appears as "Ġ" (U+0120) in these vocabularies.
 */
final class ByteLevel {
  private static final char[] BYTE_TO_CHAR = new char[256];
  /** Indexed by character; -1 where the character is not the image of a byte. */
  private static final int[] CHAR_TO_BYTE = new int[0x144];

  static {
    java.util.Arrays.fill(CHAR_TO_BYTE, -1);
    int next = 0x100;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char c = printable ? (char) b : (char) next++;
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = b;
    }
  }

  private ByteLevel() {}

  static char charOf(int b) {
    return BYTE_TO_CHAR[b & 0xFF];
  }

  /** The byte a character stands for, or -1 if it stands for none. */
  static int byteOf(char c) {
    return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
  }

  /** The vocabulary spelling of some bytes. */
  static String encode(byte[] bytes, int from, int to) {
    char[] chars = new char[to - from];
    for (int i = from; i < to; i++) {
      chars[i - from] = BYTE_TO_CHAR[bytes[i] & 0xFF];
    }
    return new String(chars);
  }

  /**
   * The bytes a vocabulary entry stands for. Like Hugging Face's ByteLevel decoder, an entry with a
   * character outside the mapping (an added token such as "<think>" is fine, "é" is not) contributes
   * its own UTF-8 bytes instead.
   */
  static byte[] decode(String token) {
    byte[] out = new byte[token.length()];
    for (int i = 0; i < token.length(); i++) {
      int b = byteOf(token.charAt(i));
      if (b < 0) {
        return token.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      }
      out[i] = (byte) b;
    }
    return out;
  }
}
