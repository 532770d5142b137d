package dev.selma.lucene;

import java.util.Objects;

/**
 * One retrieved document with its whole text.
 *
 * @param id the identifier cited to the user
 * @param title the title, or "" when the document has none
 * @param text the whole text of the text fields
 * @param score the retrieval score, or NaN when scores were not computed
 * @param version what identifies this exact version of the document for the token-count cache (a
 *     {@link SegmentDoc}, or e.g. an id and {@code _version_}); null when nothing does, then the
 *     text itself is the key
 */
public record RetrievedDocument(String id, String title, String text, float score, Object version) {
  public RetrievedDocument {
    Objects.requireNonNull(id, "id");
    title = title == null ? "" : title;
    Objects.requireNonNull(text, "text");
  }

  /**
   * A document of an immutable Lucene segment (its version for as long as the segment lives), read
   * from {@code textFields}.
   */
  public record SegmentDoc(Object segmentCoreKey, int docInSegment, java.util.List<String> textFields) {}

  /**
   * A document identified by its id and an update counter such as Solr's {@code _version_}, read
   * from {@code textFields}.
   */
  public record IdVersion(String id, long version, java.util.List<String> textFields) {}
}
