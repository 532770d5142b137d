package dev.selma.lucene;

/**
 * A document that went into the prompt.
 *
 * @param n its number in the prompt ({@code [doc n]}), from 1
 * @param rank its position in the retrieved list, from 0
 * @param doc the document
 * @param text the text that went in: the whole text, or what truncation kept
 * @param tokens the tokens of {@code text}
 * @param originalTokens the tokens of the whole text
 * @param truncation how it was cut, or null when it went in whole
 */
public record PackedDocument(int n, int rank, RetrievedDocument doc, String text, int tokens, int originalTokens,
    Truncation truncation) {
  public boolean truncated() {
    return truncation != null;
  }

  PackedDocument withN(int newN) {
    return new PackedDocument(newN, rank, doc, text, tokens, originalTokens, truncation);
  }
}
