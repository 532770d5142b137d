package dev.selma.engine.generate;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Lets another thread stop a generation. The generator checks it between prefill chunks and between
 * generated tokens, and finishes with {@link FinishReason#CANCELLED}.
 */
public final class CancellationToken {
  private final AtomicBoolean cancelled = new AtomicBoolean();

  public void cancel() {
    cancelled.set(true);
  }

  public boolean isCancelled() {
    return cancelled.get();
  }
}
