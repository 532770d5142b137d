package dev.selma.engine.tokenizer.template;

import java.util.List;
import java.util.Map;

/** Binds positional and keyword arguments to a built-in's parameters, Python style. */
final class Args {
  /** Marks a parameter without default. */
  static final Object REQUIRED = new Object();

  private Args() {}

  /**
   * @param namesAndDefaults alternating parameter names and defaults ({@link #REQUIRED} for none)
   * @return the bound values, in parameter order
   */
  static Object[] bind(String function, List<Object> args, Map<String, Object> kwargs, Object... namesAndDefaults) {
    int count = namesAndDefaults.length / 2;
    if (args.size() > count) {
      throw new EvalError(function + "() takes at most " + count + " argument(s), " + args.size() + " given");
    }
    Object[] values = new Object[count];
    boolean[] bound = new boolean[count];
    for (int i = 0; i < args.size(); i++) {
      values[i] = args.get(i);
      bound[i] = true;
    }
    for (Map.Entry<String, Object> kw : kwargs.entrySet()) {
      int at = -1;
      for (int i = 0; i < count; i++) {
        if (namesAndDefaults[2 * i].equals(kw.getKey())) {
          at = i;
        }
      }
      if (at < 0) {
        throw new EvalError(function + "() got an unexpected keyword argument '" + kw.getKey() + "'");
      }
      if (bound[at]) {
        throw new EvalError(function + "() got multiple values for argument '" + kw.getKey() + "'");
      }
      values[at] = kw.getValue();
      bound[at] = true;
    }
    for (int i = 0; i < count; i++) {
      if (!bound[i]) {
        if (namesAndDefaults[2 * i + 1] == REQUIRED) {
          throw new EvalError(function + "() missing required argument '" + namesAndDefaults[2 * i] + "'");
        }
        values[i] = namesAndDefaults[2 * i + 1];
      }
    }
    return values;
  }

  static String string(String function, Object value) {
    if (value instanceof String s) {
      return s;
    }
    throw new EvalError(function + "() expects a string, got '" + Py.typeName(value) + "'");
  }

  static long integer(String function, Object value) {
    if (Py.numeric(value) instanceof Long l) {
      return l;
    }
    throw new EvalError(function + "() expects an integer, got '" + Py.typeName(value) + "'");
  }
}
