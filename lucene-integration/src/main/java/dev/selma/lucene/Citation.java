package dev.selma.lucene;

/**
 * A document that went into the prompt, as reported to the user.
 *
 * @param n its number in the prompt ({@code [doc n]})
 * @param id its id
 * @param title its title ("" when none)
 * @param score its retrieval score (NaN when scores were not computed)
 * @param rank its position in the retrieved list, from 0
 * @param tokens the tokens of its text that went in
 * @param originalTokens the tokens of its whole text
 * @param truncation how it was cut, or null when it went in whole
 */
public record Citation(int n, String id, String title, float score, int rank, int tokens, int originalTokens,
    Truncation truncation) {

  public static Citation of(PackedDocument p) {
    return new Citation(p.n(), p.doc().id(), p.doc().title(), p.doc().score(), p.rank(), p.tokens(),
        p.originalTokens(), p.truncation());
  }

  public boolean truncated() {
    return truncation != null;
  }
}
