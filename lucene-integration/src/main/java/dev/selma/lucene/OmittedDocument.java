package dev.selma.lucene;

/**
 * A retrieved document that did not go into the prompt.
 *
 * @param rank its position in the retrieved list, from 0
 * @param doc the document
 * @param originalTokens the tokens of its whole text
 * @param reason why, in words
 */
public record OmittedDocument(int rank, RetrievedDocument doc, int originalTokens, String reason) {}
