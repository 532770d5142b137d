package dev.selma.engine.generate;

/** Why generation ended. */
public enum FinishReason {
  /** An end-of-sequence token or a stop sequence was generated. */
  STOP,
  /** The maximum number of new tokens was reached, or the context is full. */
  LENGTH,
  /** The caller cancelled the request. */
  CANCELLED
}
