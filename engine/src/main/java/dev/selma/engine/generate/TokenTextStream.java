package dev.selma.engine.generate;

/**
 * Turns generated token ids into text as they arrive (a tokenizer's streaming decoder): each call
 * returns only newly completed text, never half a UTF-8 character.
 */
@FunctionalInterface
public interface TokenTextStream {
  String next(int token);
}
