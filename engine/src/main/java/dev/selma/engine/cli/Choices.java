package dev.selma.engine.cli;

import dev.selma.engine.EngineOptions.BackendChoice;
import dev.selma.engine.model.GgmlType;
import java.util.Locale;

/** Parses named choices with messages that list the valid ones. */
final class Choices {
  private Choices() {}

  static BackendChoice backend(String name) {
    try {
      return BackendChoice.valueOf(name.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("unknown backend '" + name + "'; use auto, cpu or cuda");
    }
  }

  static GgmlType type(String name) {
    try {
      return GgmlType.valueOf(name.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("unknown tensor type '" + name + "'; use one of "
          + java.util.Arrays.toString(GgmlType.values()));
    }
  }
}
