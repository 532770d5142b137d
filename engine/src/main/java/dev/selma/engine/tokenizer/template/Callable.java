package dev.selma.engine.tokenizer.template;

import java.util.List;
import java.util.Map;

/** Something a template can call: a global function, a bound method, a macro. */
interface Callable {
  Object call(List<Object> args, Map<String, Object> kwargs);

  /** Python's type name, for error messages. */
  default String kind() {
    return "function";
  }
}
