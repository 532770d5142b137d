package dev.selma.engine.eval;

/** The long-context retrieval tasks of {@link Evaluation}. */
public enum Task {
  /**
   * The Landmark / LongLoRA passkey: "The pass key is K. Remember it. K is the pass key." hidden in
   * repeated filler, asked for at the end; plain text, no chat template. Scored as Landmark does: the
   * first number in the answer equals the key.
   */
  PASSKEY,
  /**
   * RULER-style single needle, written as Selma's document QA: one fact sentence ("The vault code of
   * the Pemberley library is 48213.") hidden in real prose, asked for through the chat template.
   * Scored as RULER's string_match_all: the value appears in the answer.
   */
  NIAH_SINGLE,
  /** As {@link #NIAH_SINGLE} with three more facts of the same attribute about other entities. */
  NIAH_MULTIKEY,
  /**
   * RULER's multi-value needle: four values of one attribute of one entity ("One of the vault codes of
   * the Pemberley library is 48213."), each at its own depth, asked for all at once; right only if the
   * answer contains all four.
   */
  NIAH_MULTIVALUE
}
