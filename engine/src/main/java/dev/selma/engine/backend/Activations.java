package dev.selma.engine.backend;

/** A row-major float matrix owned by a {@link Backend}; one row per token of a chunk. */
public interface Activations {
  int rows();

  int cols();

  /** A view of rows {@code [from, to)}, sharing storage. */
  Activations rows(int from, int to);
}
