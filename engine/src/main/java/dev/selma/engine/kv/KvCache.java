package dev.selma.engine.kv;

/**
 * The keys and values of one sequence, for every layer, keys stored <em>before</em> RoPE so that
 * attention can give them positions of its choosing. Storage belongs to the backend that created
 * the cache; this interface is what the forward pass and the generator see.
 *
 * <p>A chunk of T tokens is added in two steps: each layer stores its T keys and values at {@link
 * #length()} ({@code Backend.storeKv}) and attends over {@code length() + T} keys; once every layer is
 * done, {@link #advance(int)} makes the T tokens part of the sequence.
 */
public interface KvCache extends AutoCloseable {

  /** Tokens in the sequence. */
  int length();

  /** The most tokens this cache may hold. */
  int capacity();

  /** Makes the last stored {@code tokens} tokens part of the sequence. */
  void advance(int tokens);

  /**
   * Forgets tokens from {@code length} on (to re-run a suffix). A cache may keep fewer tokens than
   * asked, when per-block summaries of the queries (which it does not store) cannot be cut inside a
   * block; the caller then recomputes the tokens from the returned length to {@code length}.
   *
   * @return the tokens kept, at most {@code length}
   */
  int truncate(int length);

  /** Bytes of memory the cache holds now. */
  long bytes();

  @Override
  void close();
}
