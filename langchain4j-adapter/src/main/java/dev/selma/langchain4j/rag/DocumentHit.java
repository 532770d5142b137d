package dev.selma.langchain4j.rag;

import dev.langchain4j.data.document.Metadata;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.TokenCountEstimator;
import dev.langchain4j.rag.content.Content;
import dev.langchain4j.rag.content.ContentMetadata;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One retrieved whole document.
 *
 * @param id the document's id
 * @param title its title, or null
 * @param text its whole text
 * @param score the search engine's relevance score
 */
record DocumentHit(String id, String title, String text, double score) {

  /** Text segment metadata keys of the contents Selma's retrievers return. */
  static final String ID = "id";
  static final String TITLE = "title";
  static final String SCORE = "score";
  static final String TOKENS = "tokens";

  /**
   * Keeps documents in rank order while they fit the token budget: a document whose text would
   * overflow it is left out and the next, shorter ones may still fit. Documents are never cut.
   *
   * @param maxTokens the budget for all texts together, or null for none
   * @param tokens counts a text's tokens; required with a budget
   */
  static List<Content> pack(List<DocumentHit> hits, Integer maxTokens, TokenCountEstimator tokens) {
    List<Content> out = new ArrayList<>();
    long used = 0;
    for (DocumentHit h : hits) {
      Metadata m = new Metadata().put(ID, h.id()).put(SCORE, h.score());
      if (h.title() != null) {
        m.put(TITLE, h.title());
      }
      if (tokens != null) {
        int n = tokens.estimateTokenCountInText(h.text());
        if (maxTokens != null && used + n > maxTokens) {
          continue;
        }
        used += n;
        m.put(TOKENS, n);
      }
      out.add(Content.from(TextSegment.from(h.text(), m), Map.of(ContentMetadata.SCORE, h.score())));
    }
    return out;
  }

  static void checkBudget(Integer maxTokens, TokenCountEstimator tokens) {
    if (maxTokens != null && maxTokens < 1) {
      throw new IllegalArgumentException("maxTokens must be >= 1, got " + maxTokens);
    }
    if (maxTokens != null && tokens == null) {
      throw new IllegalArgumentException("a token budget (maxTokens) needs a tokenCountEstimator, e.g. "
          + "new SelmaTokenCountEstimator(model.engine())");
    }
  }
}
