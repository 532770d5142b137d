package dev.selma.lucene;

import java.util.Objects;

/**
 * How documents are packed into the token budget.
 *
 * @param maxDocTokens the most tokens of one document's text (0 = no cap but the budget)
 * @param truncation which part of a document over its share is kept
 * @param order the order of the packed documents
 * @param minDocTokens the fewest text tokens worth including of a document cut to fit what is left of
 *     the budget; a document that would get fewer is omitted (and reported)
 */
public record PackingOptions(int maxDocTokens, Truncation truncation, PackOrder order, int minDocTokens) {
  public static final PackingOptions DEFAULT = new PackingOptions(0, Truncation.HEAD, PackOrder.SCORE, 32);

  public PackingOptions {
    if (maxDocTokens < 0) {
      throw new IllegalArgumentException("maxDocTokens must be >= 0 (0 = no cap), got " + maxDocTokens);
    }
    if (minDocTokens < 1) {
      throw new IllegalArgumentException("minDocTokens must be >= 1, got " + minDocTokens);
    }
    Objects.requireNonNull(truncation, "truncation");
    Objects.requireNonNull(order, "order");
  }

  public PackingOptions withMaxDocTokens(int n) {
    return new PackingOptions(n, truncation, order, minDocTokens);
  }

  public PackingOptions withTruncation(Truncation t) {
    return new PackingOptions(maxDocTokens, t, order, minDocTokens);
  }

  public PackingOptions withOrder(PackOrder o) {
    return new PackingOptions(maxDocTokens, truncation, o, minDocTokens);
  }

  public PackingOptions withMinDocTokens(int n) {
    return new PackingOptions(maxDocTokens, truncation, order, n);
  }
}
