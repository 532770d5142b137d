package dev.selma.engine.generate;

import java.util.List;

/**
 * Finds stop sequences in streamed text and holds back any tail that could still become one, so
 * that a stop sequence is never shown to the listener, even when it arrives split over tokens.
 */
final class StopSequences {
  private final List<String> stops;
  private final StringBuilder pending = new StringBuilder();
  private boolean stopped;

  StopSequences(List<String> stops) {
    for (String s : stops) {
      if (s.isEmpty()) {
        throw new IllegalArgumentException("stop sequences must not be empty");
      }
    }
    this.stops = List.copyOf(stops);
  }

  /** Adds new text; returns the part that can be shown now. */
  String add(String text) {
    pending.append(text);
    int cut = -1;
    for (String s : stops) {
      int at = pending.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
      }
    }
    if (cut >= 0) {
      stopped = true;
      String out = pending.substring(0, cut);
      pending.setLength(0);
      return out;
    }
    String p = pending.toString();
    int hold = 0;
    for (String s : stops) {
      for (int k = Math.min(s.length() - 1, p.length()); k > hold; k--) {
        if (p.regionMatches(p.length() - k, s, 0, k)) {
          hold = k;
          break;
        }
      }
    }
    String out = pending.substring(0, pending.length() - hold);
    pending.delete(0, pending.length() - hold);
    return out;
  }

  boolean stopped() {
    return stopped;
  }

  /** Text held back when generation ends for another reason: it is part of the answer after all. */
  String flush() {
    String out = pending.toString();
    pending.setLength(0);
    return out;
  }
}
