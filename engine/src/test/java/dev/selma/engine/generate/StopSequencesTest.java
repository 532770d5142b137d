package dev.selma.engine.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopSequencesTest {
  @Test
  void aStopSequenceSplitOverPiecesIsNeverShown() {
    StopSequences s = new StopSequences(List.of("\nUser:"));
    assertEquals("Hello", s.add("Hello"));
    assertEquals("", s.add("\nUs"));
    assertFalse(s.stopped());
    assertEquals("", s.add("er: more"));
    assertTrue(s.stopped());
  }

  @Test
  void heldBackTextIsReleasedWhenItStopsMatching() {
    StopSequences s = new StopSequences(List.of("END"));
    assertEquals("a", s.add("aE"));
    assertEquals("ENx", s.add("Nx"));
    assertEquals("", s.add("EN"));
    assertEquals("EN", s.flush());
  }

  @Test
  void theEarliestOfSeveralStopsWins() {
    StopSequences s = new StopSequences(List.of("cd", "b"));
    assertEquals("a", s.add("abcd"));
    assertTrue(s.stopped());
  }
}
