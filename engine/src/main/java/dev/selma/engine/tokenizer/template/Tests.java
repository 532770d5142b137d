package dev.selma.engine.tokenizer.template;

import java.util.List;
import java.util.Map;
import java.util.function.BiPredicate;

/** jinja2's tests ({@code x is defined}, {@code x is string}, ...), with its definitions. */
final class Tests {
  private static final Map<String, BiPredicate<Object, List<Object>>> TESTS = Map.ofEntries(
      Map.entry("defined", (v, a) -> !(v instanceof Undefined)),
      Map.entry("undefined", (v, a) -> v instanceof Undefined),
      Map.entry("none", (v, a) -> v == null),
      Map.entry("boolean", (v, a) -> v instanceof Boolean),
      Map.entry("true", (v, a) -> Boolean.TRUE.equals(v)),
      Map.entry("false", (v, a) -> Boolean.FALSE.equals(v)),
      Map.entry("integer", (v, a) -> v instanceof Long),
      Map.entry("float", (v, a) -> v instanceof Double),
      Map.entry("number", (v, a) -> Py.isNumber(v)),
      Map.entry("string", (v, a) -> v instanceof String),
      Map.entry("mapping", (v, a) -> v instanceof Map),
      // Undefined counts as iterable and as a sequence in jinja2: it has __iter__, __len__ and __getitem__.
      Map.entry("iterable", (v, a) -> v instanceof List || v instanceof Map || v instanceof String || v instanceof Undefined),
      Map.entry("sequence", (v, a) -> v instanceof List || v instanceof Map || v instanceof String || v instanceof Undefined),
      Map.entry("callable", (v, a) -> v instanceof Callable),
      Map.entry("lower", (v, a) -> v instanceof String s && s.equals(s.toLowerCase(java.util.Locale.ROOT))),
      Map.entry("upper", (v, a) -> v instanceof String s && s.equals(s.toUpperCase(java.util.Locale.ROOT))),
      Map.entry("odd", (v, a) -> integer("odd", v) % 2 != 0),
      Map.entry("even", (v, a) -> integer("even", v) % 2 == 0),
      Map.entry("divisibleby", (v, a) -> integer("divisibleby", v) % integer("divisibleby", arg("divisibleby", a)) == 0),
      Map.entry("sameas", (v, a) -> sameAs(v, arg("sameas", a))),
      Map.entry("equalto", (v, a) -> Py.eq(v, arg("equalto", a))),
      Map.entry("eq", (v, a) -> Py.eq(v, arg("eq", a))),
      Map.entry("==", (v, a) -> Py.eq(v, arg("==", a))),
      Map.entry("ne", (v, a) -> !Py.eq(v, arg("ne", a))),
      Map.entry("!=", (v, a) -> !Py.eq(v, arg("!=", a))),
      Map.entry("lt", (v, a) -> Py.compare(v, arg("lt", a)) < 0),
      Map.entry("lessthan", (v, a) -> Py.compare(v, arg("lessthan", a)) < 0),
      Map.entry("<", (v, a) -> Py.compare(v, arg("<", a)) < 0),
      Map.entry("le", (v, a) -> Py.compare(v, arg("le", a)) <= 0),
      Map.entry("<=", (v, a) -> Py.compare(v, arg("<=", a)) <= 0),
      Map.entry("gt", (v, a) -> Py.compare(v, arg("gt", a)) > 0),
      Map.entry("greaterthan", (v, a) -> Py.compare(v, arg("greaterthan", a)) > 0),
      Map.entry(">", (v, a) -> Py.compare(v, arg(">", a)) > 0),
      Map.entry("ge", (v, a) -> Py.compare(v, arg("ge", a)) >= 0),
      Map.entry(">=", (v, a) -> Py.compare(v, arg(">=", a)) >= 0),
      Map.entry("in", (v, a) -> Py.contains(arg("in", a), v)));

  private Tests() {}

  static boolean exists(String name) {
    return TESTS.containsKey(name);
  }

  static boolean apply(String name, Object value, List<Object> args) {
    BiPredicate<Object, List<Object>> test = TESTS.get(name);
    if (test == null) {
      throw new EvalError("unknown test '" + name + "'");
    }
    return test.test(value, args);
  }

  private static Object arg(String test, List<Object> args) {
    if (args.size() != 1) {
      throw new EvalError("test '" + test + "' takes one argument, " + args.size() + " given");
    }
    return args.get(0);
  }

  private static long integer(String test, Object v) {
    if (v instanceof Undefined u) {
      throw u.error();
    }
    if (Py.numeric(v) instanceof Long l) {
      return l;
    }
    throw new EvalError("test '" + test + "' needs an integer, got '" + Py.typeName(v) + "'");
  }

  /** Python's {@code is}: identity, which for the singletons None, True and False is equality. */
  private static boolean sameAs(Object a, Object b) {
    if (a == null || b == null || a instanceof Boolean || b instanceof Boolean) {
      return a == null ? b == null : a.equals(b);
    }
    return a == b;
  }
}
