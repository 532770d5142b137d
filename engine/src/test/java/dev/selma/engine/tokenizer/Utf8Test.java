package dev.selma.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Lossy UTF-8 decoding replaces each maximal ill-formed subsequence by one U+FFFD, as Rust does. */
class Utf8Test {
  private static String decode(boolean complete, int... bytes) {
    byte[] b = new byte[bytes.length];
    for (int i = 0; i < b.length; i++) {
      b[i] = (byte) bytes[i];
    }
    StringBuilder out = new StringBuilder();
    int used = Utf8.decode(b, b.length, complete, out);
    return out + "|" + used;
  }

  @Test
  void wellFormedAndIllFormed() {
    assertEquals("a€😀|8", decode(true, 'a', 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80));
    assertEquals("\uFFFDA|3", decode(true, 0xE2, 0x82, 'A'));
    assertEquals("\uFFFD\uFFFD|2", decode(true, 0xC0, 0x80)); // overlong: each byte on its own
    assertEquals("\uFFFD\uFFFD\uFFFD|3", decode(true, 0xED, 0xA0, 0x80)); // surrogate
    assertEquals("\uFFFD|3", decode(true, 0xF0, 0x9F, 0x98)); // truncated at the end: one replacement
    assertEquals("\uFFFD\uFFFD|2", decode(true, 0xF4, 0x90)); // above U+10FFFF
  }

  @Test
  void incompleteTailIsHeldBackUnlessComplete() {
    assertEquals("a|1", decode(false, 'a', 0xF0, 0x9F, 0x98));
    assertEquals("a\uFFFDb|3", decode(false, 'a', 0xFF, 'b'));
    assertTrue(Utf8.isWellFormed(new byte[] {(byte) 0xE2, (byte) 0x82, (byte) 0xAC}, 3));
    assertFalse(Utf8.isWellFormed(new byte[] {(byte) 0xE2, (byte) 0x82}, 2));
  }
}
