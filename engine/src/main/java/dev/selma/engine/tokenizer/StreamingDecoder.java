package dev.selma.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns generated ids into text as they arrive. {@link #next} returns only text that later ids cannot
 * change: never part of a UTF-8 character, and never part of a run of byte-fallback tokens (HF turns
 * a whole run into U+FFFD when it is not well-formed, so a run is released when it ends). {@link
 * #flush} returns what is held back, decoded as a final {@link Tokenizer#decode} would. The
 * concatenation of everything returned equals {@code decode} of all ids. Not thread-safe: one per
 * generation.
 */
public final class StreamingDecoder {
  private final Tokenizer tokenizer;
  private final Decoding decoding;
  private final boolean skipSpecialTokens;
  /** Byte-level: bytes not yet decoded. SentencePiece: the current run of byte-fallback bytes. */
  private byte[] pending = new byte[16];
  private int pendingLength;
  private int stripRemaining;
  private boolean firstToken = true;

  StreamingDecoder(Tokenizer tokenizer, Decoding decoding, boolean skipSpecialTokens) {
    this.tokenizer = tokenizer;
    this.decoding = decoding;
    this.skipSpecialTokens = skipSpecialTokens;
    this.stripRemaining = decoding.stripLeadingSpaces();
  }

  /** Feeds one id; returns the text it completes (possibly empty). */
  public String next(int id) {
    String token = tokenizer.tokenOrNull(id);
    if (token == null || (skipSpecialTokens && tokenizer.isSpecial(id))) {
      return ""; // HF drops ids that have no token
    }
    StringBuilder out = new StringBuilder();
    if (decoding.byteLevel()) {
      append(ByteLevel.decode(token));
      int used = Utf8.decode(pending, pendingLength, false, out);
      System.arraycopy(pending, used, pending, 0, pendingLength - used);
      pendingLength -= used;
      return out.toString();
    }
    token = decoding.replace(token, firstToken);
    firstToken = false;
    int b = decoding.byteFallback() ? Decoding.fallbackByte(token) : -1;
    if (b >= 0) {
      append(new byte[] {(byte) b});
      return "";
    }
    flushRun(out);
    out.append(token);
    return strip(out);
  }

  /** Returns all text still held back (ends the stream). */
  public String flush() {
    StringBuilder out = new StringBuilder();
    if (decoding.byteLevel()) {
      Utf8.decode(pending, pendingLength, true, out);
      pendingLength = 0;
      return out.toString();
    }
    flushRun(out);
    return strip(out);
  }

  private void append(byte[] bytes) {
    if (pendingLength + bytes.length > pending.length) {
      pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + bytes.length));
    }
    System.arraycopy(bytes, 0, pending, pendingLength, bytes.length);
    pendingLength += bytes.length;
  }

  private void flushRun(StringBuilder out) {
    if (pendingLength == 0) {
      return;
    }
    if (Utf8.isWellFormed(pending, pendingLength)) {
      out.append(new String(pending, 0, pendingLength, StandardCharsets.UTF_8));
    } else {
      out.repeat(Utf8.REPLACEMENT, pendingLength);
    }
    pendingLength = 0;
  }

  /** Removes the leading spaces of the whole text (HF's Strip after Fuse). */
  private String strip(StringBuilder out) {
    if (stripRemaining > 0 && !out.isEmpty()) {
      int cut = 0;
      while (cut < out.length() && cut < stripRemaining && out.charAt(cut) == ' ') {
        cut++;
      }
      // Once any character has been written, later text is no longer at the start.
      stripRemaining = cut < out.length() ? 0 : stripRemaining - cut;
      return out.substring(cut);
    }
    return out.toString();
  }
}
