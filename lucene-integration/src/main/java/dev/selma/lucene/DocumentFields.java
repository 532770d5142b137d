package dev.selma.lucene;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Which stored fields make up a document for the model.
 *
 * @param idField the field whose value identifies the document in citations
 * @param titleField the field shown as the document's title (may be absent in a document)
 * @param textFields the fields whose whole stored text the model reads, in this order; several values
 *     (and several fields) are joined by a blank line
 */
public record DocumentFields(String idField, String titleField, List<String> textFields) {
  public DocumentFields {
    Objects.requireNonNull(idField, "idField");
    Objects.requireNonNull(titleField, "titleField");
    textFields = List.copyOf(textFields);
    if (textFields.isEmpty()) {
      throw new IllegalArgumentException("at least one text field is needed");
    }
  }

  public static DocumentFields of(String idField, String titleField, String... textFields) {
    return new DocumentFields(idField, titleField, List.of(textFields));
  }

  /** Every field to load. */
  public Set<String> all() {
    Set<String> s = new LinkedHashSet<>();
    s.add(idField);
    s.add(titleField);
    s.addAll(textFields);
    return s;
  }
}
