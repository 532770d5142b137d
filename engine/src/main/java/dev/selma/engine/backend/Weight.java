package dev.selma.engine.backend;

import dev.selma.engine.model.GgmlType;

/** A weight tensor made available to a {@link Backend}: rows × cols elements of some type. */
public interface Weight {
  String name();

  GgmlType type();

  int rows();

  int cols();
}
