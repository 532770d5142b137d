package dev.selma.engine.tokenizer;

/**
 * HF's Metaspace pre-tokenizer, the non-legacy way tokenizer.json files express SentencePiece's space
 * convention: spaces become "▁", and a "▁" is prepended — to every stretch of text ({@code always}),
 * or only to the one that starts the input ({@code first}, so not after a special token) — unless the
 * stretch already starts with one. With {@code split}, every "▁" starts a new word.
 */
record Metaspace(Prepend prepend, boolean split) {
  static final char REPLACEMENT = '\u2581';

  enum Prepend { ALWAYS, FIRST, NEVER }

  /** Applies to one stretch of text between added tokens; {@code atStart}: it starts the input. */
  String apply(String text, boolean atStart) {
    String s = text.replace(' ', REPLACEMENT);
    boolean add = prepend == Prepend.ALWAYS || (prepend == Prepend.FIRST && atStart);
    return add && !s.isEmpty() && s.charAt(0) != REPLACEMENT ? REPLACEMENT + s : s;
  }
}
