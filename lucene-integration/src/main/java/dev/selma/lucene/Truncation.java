package dev.selma.lucene;

import java.util.Arrays;
import java.util.Locale;

/** Which part of a document too long for its share of the budget is kept. */
public enum Truncation {
  /** Keep the beginning. */
  HEAD,
  /** Keep the end. */
  TAIL,
  /** Keep the beginning and the end; a marker replaces the middle. */
  MIDDLE;

  /** The text that replaces the dropped middle of a document. */
  public static final String MIDDLE_MARKER = "\n[...]\n";

  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** {@code head}, {@code tail} or {@code middle}, any case. */
  public static Truncation parse(String s) {
    for (Truncation t : values()) {
      if (t.name().equalsIgnoreCase(s.trim())) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown truncation '" + s + "'; use one of "
        + Arrays.stream(values()).map(Truncation::label).toList());
  }
}
