package dev.selma.engine.backend.cuda;

import dev.selma.engine.EngineOptions.BackendChoice;

/**
 * Which backend runs a model, and why: the configured choice against what the machine offers.
 *
 * @param cuda whether to start the CUDA backend (else the CPU backend)
 * @param reason why, for the one log line that reports the choice
 */
public record BackendSelection(boolean cuda, String reason) {

  /**
   * AUTO takes CUDA when it is usable and says why not otherwise; CUDA demands it; CPU never probes.
   *
   * @throws IllegalStateException if CUDA is demanded but not usable, with the reason
   */
  public static BackendSelection decide(BackendChoice requested, CudaAvailability cuda) {
    return switch (requested) {
      case CPU -> new BackendSelection(false, "configured");
      case CUDA -> {
        if (!cuda.usable()) {
          throw new IllegalStateException("backend 'cuda' was requested but " + cuda.reason());
        }
        yield new BackendSelection(true, "configured; " + cuda.reason());
      }
      case AUTO -> cuda.usable()
          ? new BackendSelection(true, "auto: " + cuda.reason())
          : new BackendSelection(false, "auto: " + cuda.reason());
    };
  }
}
