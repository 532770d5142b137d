package dev.selma.engine.model;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A model file that cannot be used: truncated, corrupted, of an unsupported type or architecture, or
 * inconsistent with itself. The message names the file, the item (tensor or metadata key) when there
 * is one, and the problem.
 */
public final class ModelFormatException extends IOException {
  private final Path file;

  public ModelFormatException(Path file, String item, String problem) {
    this(file, item, problem, null);
  }

  public ModelFormatException(Path file, String item, String problem, Throwable cause) {
    super(file + (item == null ? "" : ": " + item) + ": " + problem, cause);
    this.file = file;
  }

  public Path file() {
    return file;
  }
}
