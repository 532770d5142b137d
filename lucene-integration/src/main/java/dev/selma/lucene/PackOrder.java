package dev.selma.lucene;

import java.util.Arrays;
import java.util.Locale;

/**
 * The order of the packed documents in the prompt. Which documents go in is always decided by rank;
 * the order only arranges them.
 */
public enum PackOrder {
  /** Best first, as retrieved. */
  SCORE,
  /**
   * By id, so that the same documents make the same prompt prefix whatever the question and the
   * scores: the order that lets a prefix cache reuse the documents' keys and values.
   */
  STABLE;

  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** {@code score} or {@code stable}, any case. */
  public static PackOrder parse(String s) {
    for (PackOrder o : values()) {
      if (o.name().equalsIgnoreCase(s.trim())) {
        return o;
      }
    }
    throw new IllegalArgumentException("unknown packing order '" + s + "'; use one of "
        + Arrays.stream(values()).map(PackOrder::label).toList());
  }
}
