package dev.selma.engine.generate;

import java.util.ArrayList;
import java.util.List;

/**
 * Document reuse for one prompt (opt-in, an approximation): the prompt is a prefix (chat template
 * header, system message), documents (token ranges), and what lies between and after them (their
 * headers, the question). Each document's keys and values are those it computes on its own, right
 * after the prefix: taken from the prefix cache when an earlier prompt held the document after the
 * same prefix, in any combination or order, and else computed once and kept there. Everything else
 * is computed in the prompt, as usual. A document's tokens thus do not see the documents before it;
 * the tokens after them (other documents' headers, the question, the answer) see everything.
 *
 * <p>What a request computes does not depend on what the cache holds: the same request gives the
 * same answer whether its documents were cached, computed now, or evicted in between. It does differ
 * from the exact prompt. {@code boundaryTokens} narrows the gap: the first tokens of each document
 * are computed in the prompt, with their real preceding context, and only the rest is placed.
 * Measurements on the demo model: {@code docs/prefix-cache.md}.
 *
 * <p>Document reuse needs the prefix cache (the request's {@code usePrefixCache} and the engine's
 * cache on); without it the documents are computed in the prompt like any other tokens.
 *
 * @param prefix tokens {@code [0, prefix)} after which every document is encoded; what all prompts
 *     over these documents start with (documents after a different prefix are encoded again)
 * @param documents the documents' token ranges, in prompt order, from the prefix on, not overlapping
 * @param boundaryTokens the first tokens of each document that are computed in the prompt rather than
 *     placed; a document no longer than this is computed whole
 */
public record DocumentReuse(int prefix, List<Range> documents, int boundaryTokens) {
  /**
   * Tokens computed in the prompt at the start of each document unless {@link #withBoundaryTokens}
   * says otherwise: none, as 16 or 32 did not measurably bring the demo model's answers closer to
   * the exact prompt's while costing a third more prefill.
   */
  public static final int DEFAULT_BOUNDARY_TOKENS = 0;

  /** Tokens {@code [from, to)} of the prompt. */
  public record Range(int from, int to) {
    public int length() {
      return to - from;
    }

    @Override
    public String toString() {
      return "[" + from + ", " + to + ")";
    }
  }

  public DocumentReuse {
    if (prefix < 0) {
      throw new IllegalArgumentException("the documents' prefix must be >= 0 tokens, got " + prefix);
    }
    if (boundaryTokens < 0) {
      throw new IllegalArgumentException("boundary tokens must be >= 0, got " + boundaryTokens);
    }
    documents = List.copyOf(documents);
    int end = prefix;
    for (int i = 0; i < documents.size(); i++) {
      Range r = documents.get(i);
      String which = "document " + (i + 1) + " " + r;
      if (r.from() >= r.to()) {
        throw new IllegalArgumentException(which + " is empty or reversed");
      }
      if (r.from() < prefix) {
        throw new IllegalArgumentException(which + " starts inside the prefix of " + prefix + " tokens");
      }
      if (r.from() < end) {
        throw new IllegalArgumentException(which + " overlaps document " + i + " " + documents.get(i - 1)
            + "; documents must be in prompt order and must not overlap");
      }
      end = r.to();
    }
  }

  /**
   * The documents {@code ranges} ({@code {from, to}} each, in prompt order) after {@code prefix},
   * with {@value #DEFAULT_BOUNDARY_TOKENS} boundary tokens.
   */
  public static DocumentReuse of(int prefix, int[]... ranges) {
    List<Range> list = new ArrayList<>();
    for (int i = 0; i < ranges.length; i++) {
      if (ranges[i].length != 2) {
        throw new IllegalArgumentException("document " + (i + 1) + " must be given as {from, to}, got "
            + ranges[i].length + " numbers");
      }
      list.add(new Range(ranges[i][0], ranges[i][1]));
    }
    return new DocumentReuse(prefix, list, DEFAULT_BOUNDARY_TOKENS);
  }

  public DocumentReuse withBoundaryTokens(int tokens) {
    return new DocumentReuse(prefix, documents, tokens);
  }

  /** Checks that the prefix and documents lie within a prompt of {@code length} tokens. */
  void requireWithin(int length) {
    if (prefix > length) {
      throw new IllegalArgumentException("the documents' prefix of " + prefix + " tokens is longer than the prompt of "
          + length);
    }
    for (int i = 0; i < documents.size(); i++) {
      if (documents.get(i).to() > length) {
        throw new IllegalArgumentException("document " + (i + 1) + " " + documents.get(i)
            + " lies outside the prompt of " + length + " tokens");
      }
    }
  }

  /**
   * The tokens of document {@code i} that are placed rather than computed in a prompt of {@code
   * length} tokens: all but the boundary tokens and the prompt's last token, which is always
   * computed (its logits give the first answer token). Empty when nothing is placed.
   */
  Range placed(int i, int length) {
    Range r = documents.get(i);
    int from = (int) Math.min((long) r.from() + boundaryTokens, r.to());
    return new Range(from, Math.max(from, Math.min(r.to(), length - 1)));
  }

  /** Whether any document of a prompt of {@code length} tokens has tokens to place. */
  boolean placesAny(int length) {
    for (int i = 0; i < documents.size(); i++) {
      if (placed(i, length).length() > 0) {
        return true;
      }
    }
    return false;
  }
}
