package dev.selma.engine.tokenizer;

/** Turns one pre-token ("word") into token ids: BPE by merge rank, or SentencePiece by score. */
interface WordModel {

  /** Appends the ids of one word, already normalized. */
  void encodeWord(String word, IntArray out, BpeModel.Scratch scratch);

  /**
   * SentencePiece vocabularies: whether a word may be cut before each run of "▁" without changing the
   * result, which holds when no token has "▁" right after another character. Lets the cache work
   * on words instead of whole texts.
   */
  boolean splitsAtSpaces();

  /** The id standing for a byte (byte-level symbol or {@code <0xNN>} fallback token), or -1. */
  int byteId(int b);

  /** Whether a vocabulary allows {@link #splitsAtSpaces}. */
  static boolean splitsAtSpaces(Iterable<String> tokens) {
    for (String t : tokens) {
      for (int i = t.indexOf('\u2581', 1); i > 0; i = t.indexOf('\u2581', i + 1)) {
        if (t.charAt(i - 1) != '\u2581') {
          return false;
        }
      }
    }
    return true;
  }
}
