package dev.selma.engine.tokenizer.template;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * jinja2's {@code namespace()}: the one object whose attributes a template may assign ({@code {%
 * set ns.x = 1 %}}), which is how templates carry state out of a loop body.
 */
final class Namespace {
  private final Map<Object, Object> attributes = new LinkedHashMap<>();

  Map<Object, Object> attributes() {
    return attributes;
  }
}
