package dev.selma.langchain4j.rag;

import java.util.List;

/** A few short invented documents, and one long one that a small token budget leaves out. */
final class TestDocuments {
  record Doc(String id, String title, String text) {}

  static final Doc LIGHTHOUSE = new Doc("gull-rock", "The Lighthouse on Gull Rock",
      "The lighthouse on Gull Rock was built in 1871. Its keeper, Ada Penrose, lit the lamp every evening for "
          + "forty years. The lamp code of the Gull Rock lighthouse is 48213. Ships passing the rock at night "
          + "steered by its white flash.");
  static final Doc ORCHARD = new Doc("millbrook", "The Millbrook Orchard",
      "The orchard near Millbrook grows forty kinds of apple. The oldest tree was planted in 1802 and still "
          + "bears fruit every autumn.");
  static final Doc CANAL = new Doc("canal", "The Old Canal",
      "The old canal carried coal from the hills to the harbour. Barges were pulled by horses along the "
          + "towpath until 1923.");
  static final Doc LONG = new Doc("almanac", "The Coastal Almanac",
      "The lighthouse keepers of the coast kept long logs. ".repeat(150) + "Gull Rock appears in many of them.");

  static final List<Doc> ALL = List.of(LIGHTHOUSE, ORCHARD, CANAL, LONG);

  private TestDocuments() {}
}
