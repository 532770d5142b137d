package dev.selma.lucene;

import java.util.List;

/**
 * A prompt ready to generate from.
 *
 * @param ids the prompt's token ids
 * @param text the rendered prompt (what {@code ids} encode)
 * @param included the documents that went in, in prompt order
 * @param omitted the retrieved documents that did not
 * @param overheadTokens tokens of everything but the document blocks: template, instructions, question
 * @param promptLimit the most prompt tokens allowed (the budget less the answer's tokens)
 * @param spans where each included document lies in {@code ids}, in prompt order (from its header to
 *     its trailing blank line; within a few tokens, as the pieces are counted separately)
 * @param documentPrefix tokens before the first document's header (template, instructions, the
 *     documents' heading): what every prompt over any documents starts with
 * @param documentTexts the exact token ranges of the included documents' texts (without their headers),
 *     for the documents whose text begins and ends on a token boundary of {@code ids}; the engine can
 *     reuse those documents' keys and values from earlier prompts ({@code DocumentReuse})
 */
public record AssembledPrompt(int[] ids, String text, List<PackedDocument> included, List<OmittedDocument> omitted,
    int overheadTokens, int promptLimit, List<Span> spans, int documentPrefix, List<Span> documentTexts) {

  /** Tokens {@code [from, to)} of the prompt hold document {@code n}. */
  public record Span(int n, int from, int to) {}

  /** Which documents went in, for the user. */
  public List<Citation> citations() {
    return included.stream().map(Citation::of).toList();
  }
}
