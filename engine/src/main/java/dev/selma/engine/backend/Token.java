package dev.selma.engine.backend;

/**
 * A token chosen from logits by a backend ({@link Logits#greedy}), whose id may still be on its way to the
 * host: a GPU leaves its choice on the device, where the next decode step's embedding reads it, so that
 * the step can be queued before the host has the id.
 */
public interface Token {
  /** The id, waiting for the backend to deliver it if it has not yet. */
  int id();

  /** A token whose id the host has. */
  static Token of(int id) {
    return () -> id;
  }
}
