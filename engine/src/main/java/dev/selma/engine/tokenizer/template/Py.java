package dev.selma.engine.tokenizer.template;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Python semantics of template values, because chat templates are written against Python:
 * truthiness, {@code str()} and {@code repr()}, equality and ordering, {@code len()}, iteration,
 * {@code json.dumps}. Values are {@code null} (None), {@link Undefined}, {@link Boolean}, {@link
 * Long}, {@link Double}, {@link String}, {@link List} (a {@link Tuple} for tuples), {@link Map} with
 * insertion order, and the interpreter's own objects. Strings are indexed by code point, as in
 * Python.
 */
final class Py {
  private Py() {}

  /** A Python tuple: an immutable list that prints with parentheses. */
  static final class Tuple extends java.util.AbstractList<Object> {
    private final List<Object> items;

    Tuple(List<Object> items) {
      // Copied into a list that accepts null, because None is a legitimate element.
      this.items = java.util.Collections.unmodifiableList(new ArrayList<>(items));
    }

    @Override
    public Object get(int index) {
      return items.get(index);
    }

    @Override
    public int size() {
      return items.size();
    }
  }

  /** A dict view ({@code d.keys()}, {@code d.values()}, {@code d.items()}): a list that prints as Python's. */
  static final class View extends java.util.AbstractList<Object> {
    private final String name;
    private final List<Object> items;

    View(String name, List<Object> items) {
      this.name = name;
      this.items = items;
    }

    @Override
    public Object get(int index) {
      return items.get(index);
    }

    @Override
    public int size() {
      return items.size();
    }
  }

  // ---- whitespace, as str.isspace() defines it ----

  static boolean isSpace(int c) {
    return switch (c) {
      case ' ', '\t', '\n', '\u000b', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680, 0x2028,
          0x2029, 0x202f, 0x205f, 0x3000 ->
          true;
      default -> c >= 0x2000 && c <= 0x200a;
    };
  }

  static String strip(String s, String chars) {
    return rstrip(lstrip(s, chars), chars);
  }

  static String lstrip(String s, String chars) {
    int i = 0;
    while (i < s.length()) {
      int cp = s.codePointAt(i);
      if (!stripped(cp, chars)) {
        break;
      }
      i += Character.charCount(cp);
    }
    return s.substring(i);
  }

  static String rstrip(String s) {
    return rstrip(s, null);
  }

  static String rstrip(String s, String chars) {
    int i = s.length();
    while (i > 0) {
      int cp = s.codePointBefore(i);
      if (!stripped(cp, chars)) {
        break;
      }
      i -= Character.charCount(cp);
    }
    return s.substring(0, i);
  }

  private static boolean stripped(int cp, String chars) {
    return chars == null ? isSpace(cp) : chars.indexOf(Character.toString(cp)) >= 0;
  }

  // ---- strings by code point ----

  static int length(String s) {
    return s.codePointCount(0, s.length());
  }

  static List<Object> chars(String s) {
    List<Object> out = new ArrayList<>(s.length());
    s.codePoints().forEach(cp -> out.add(Character.toString(cp)));
    return out;
  }

  // ---- type names and truthiness ----

  static String typeName(Object v) {
    return switch (v) {
      case null -> "NoneType";
      case Boolean b -> "bool";
      case Long l -> "int";
      case Double d -> "float";
      case String s -> "str";
      case Tuple t -> "tuple";
      case View w -> w.name;
      case List<?> l -> "list";
      case Map<?, ?> m -> "dict";
      case Undefined u -> "Undefined";
      case Namespace n -> "Namespace";
      case LoopContext l -> "LoopContext";
      case Callable c -> c.kind();
      default -> v.getClass().getSimpleName();
    };
  }

  static boolean truthy(Object v) {
    return switch (v) {
      case null -> false;
      case Boolean b -> b;
      case Long l -> l != 0;
      case Double d -> d != 0.0;
      case String s -> !s.isEmpty();
      case Collection<?> c -> !c.isEmpty();
      case Map<?, ?> m -> !m.isEmpty();
      case Undefined u -> false;
      default -> true;
    };
  }

  // ---- str() and repr() ----

  static String str(Object v) {
    return switch (v) {
      case null -> "None";
      case String s -> s;
      case Undefined u -> "";
      default -> repr(v);
    };
  }

  static String repr(Object v) {
    return switch (v) {
      case null -> "None";
      case Boolean b -> b ? "True" : "False";
      case Long l -> l.toString();
      case Double d -> floatRepr(d);
      case String s -> stringRepr(s);
      case Undefined u -> "Undefined";
      case View w -> w.name + "(" + repr(new ArrayList<>(w)) + ")";
      case Tuple t -> {
        StringBuilder out = new StringBuilder("(");
        for (int i = 0; i < t.size(); i++) {
          out.append(i > 0 ? ", " : "").append(repr(t.get(i)));
        }
        yield out.append(t.size() == 1 ? ",)" : ")").toString();
      }
      case List<?> l -> {
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < l.size(); i++) {
          out.append(i > 0 ? ", " : "").append(repr(l.get(i)));
        }
        yield out.append(']').toString();
      }
      case Map<?, ?> m -> {
        StringBuilder out = new StringBuilder("{");
        boolean first = true;
        for (Map.Entry<?, ?> e : m.entrySet()) {
          out.append(first ? "" : ", ").append(repr(e.getKey())).append(": ");
          out.append(repr(e.getValue()));
          first = false;
        }
        yield out.append('}').toString();
      }
      case Namespace n -> "<Namespace " + repr(n.attributes()) + ">";
      default -> "<" + typeName(v) + ">";
    };
  }

  /** Python's float repr: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
  static String floatRepr(double d) {
    if (Double.isNaN(d)) {
      return "nan";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "inf" : "-inf";
    }
    if (d == 0) {
      return (1 / d < 0) ? "-0.0" : "0.0";
    }
    // Double.toString gives the shortest digits that round-trip (JDK 19+), as Python's repr does.
    BigDecimal exact = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
    String digits = exact.unscaledValue().toString();
    int exponent = digits.length() - 1 - exact.scale();
    StringBuilder out = new StringBuilder(d < 0 ? "-" : "");
    if (exponent < -4 || exponent >= 16) {
      out.append(digits.charAt(0));
      if (digits.length() > 1) {
        out.append('.').append(digits, 1, digits.length());
      }
      out.append('e').append(exponent < 0 ? '-' : '+');
      int abs = Math.abs(exponent);
      out.append(abs < 10 ? "0" : "").append(abs);
    } else if (exponent < 0) {
      out.append("0.").append("0".repeat(-exponent - 1)).append(digits);
    } else if (digits.length() <= exponent + 1) {
      out.append(digits).append("0".repeat(exponent + 1 - digits.length())).append(".0");
    } else {
      out.append(digits, 0, exponent + 1).append('.').append(digits, exponent + 1, digits.length());
    }
    return out.toString();
  }

  static String stringRepr(String s) {
    char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
    StringBuilder out = new StringBuilder().append(quote);
    s.codePoints()
        .forEach(
            cp -> {
              switch (cp) {
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                  if (cp == quote) {
                    out.append('\\').append(quote);
                  } else if (isPrintable(cp)) {
                    out.appendCodePoint(cp);
                  } else if (cp < 0x100) {
                    out.append(String.format("\\x%02x", cp));
                  } else if (cp < 0x10000) {
                    out.append(String.format("\\u%04x", cp));
                  } else {
                    out.append(String.format("\\U%08x", cp));
                  }
                }
              }
            });
    return out.append(quote).toString();
  }

  private static boolean isPrintable(int cp) {
    if (cp == ' ') {
      return true;
    }
    return switch (Character.getType(cp)) {
      case Character.CONTROL,
          Character.FORMAT,
          Character.SURROGATE,
          Character.PRIVATE_USE,
          Character.UNASSIGNED,
          Character.LINE_SEPARATOR,
          Character.PARAGRAPH_SEPARATOR,
          Character.SPACE_SEPARATOR ->
          false;
      default -> true;
    };
  }

  // ---- numbers, equality and ordering ----

  static boolean isNumber(Object v) {
    return v instanceof Long || v instanceof Double || v instanceof Boolean;
  }

  /** Python's bool is an int; arithmetic on it sees 0 or 1. */
  static Object numeric(Object v) {
    return v instanceof Boolean b ? (b ? 1L : 0L) : v;
  }

  static double toDouble(Object v) {
    return switch (numeric(v)) {
      case null -> throw new EvalError("expected a number, got 'NoneType'");
      case Long l -> l;
      case Double d -> d;
      default -> throw new EvalError("expected a number, got '" + typeName(v) + "'");
    };
  }

  static boolean eq(Object a, Object b) {
    if (a == b) {
      return true;
    }
    if (a == null || b == null) {
      return false;
    }
    if (isNumber(a) && isNumber(b)) {
      Object x = numeric(a);
      Object y = numeric(b);
      if (x instanceof Long l && y instanceof Long m) {
        return l.longValue() == m.longValue();
      }
      return toDouble(x) == toDouble(y);
    }
    if (a instanceof Undefined || b instanceof Undefined) {
      return a instanceof Undefined && b instanceof Undefined;
    }
    if (a instanceof List<?> l && b instanceof List<?> m) {
      if ((a instanceof Tuple) != (b instanceof Tuple) || l.size() != m.size()) {
        return false;
      }
      for (int i = 0; i < l.size(); i++) {
        if (!eq(l.get(i), m.get(i))) {
          return false;
        }
      }
      return true;
    }
    if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
      if (x.size() != y.size()) {
        return false;
      }
      for (Map.Entry<?, ?> e : x.entrySet()) {
        Object key = findKey(y, e.getKey());
        if (key == MISSING || !eq(e.getValue(), y.get(key))) {
          return false;
        }
      }
      return true;
    }
    return Objects.equals(a, b);
  }

  static final Object MISSING = new Object();

  /** The key of {@code map} equal to {@code key} in Python's sense (1 == 1.0 == True), or MISSING. */
  static Object findKey(Map<?, ?> map, Object key) {
    if (map.containsKey(key)) {
      return key;
    }
    for (Object k : map.keySet()) {
      if (eq(k, key)) {
        return k;
      }
    }
    return MISSING;
  }

  /** Python's {@code <} family: numbers with numbers, strings by code point, lists element-wise. */
  static int compare(Object a, Object b) {
    if (a instanceof Undefined u) {
      throw u.error();
    }
    if (b instanceof Undefined u) {
      throw u.error();
    }
    if (isNumber(a) && isNumber(b)) {
      Object x = numeric(a);
      Object y = numeric(b);
      if (x instanceof Long l && y instanceof Long m) {
        return Long.compare(l, m);
      }
      return Double.compare(toDouble(x), toDouble(y));
    }
    if (a instanceof String s && b instanceof String t) {
      return compareCodePoints(s, t);
    }
    if (a instanceof List<?> l && b instanceof List<?> m && (a instanceof Tuple) == (b instanceof Tuple)) {
      for (int i = 0; i < Math.min(l.size(), m.size()); i++) {
        if (!eq(l.get(i), m.get(i))) {
          return compare(l.get(i), m.get(i));
        }
      }
      return Integer.compare(l.size(), m.size());
    }
    throw new EvalError(
        "'<' not supported between instances of '" + typeName(a) + "' and '" + typeName(b) + "'");
  }

  private static int compareCodePoints(String s, String t) {
    int i = 0;
    int j = 0;
    while (i < s.length() && j < t.length()) {
      int a = s.codePointAt(i);
      int b = t.codePointAt(j);
      if (a != b) {
        return Integer.compare(a, b);
      }
      i += Character.charCount(a);
      j += Character.charCount(b);
    }
    return Integer.compare(s.length() - i, t.length() - j);
  }

  // ---- len() and iteration ----

  static long len(Object v) {
    return switch (v) {
      case String s -> length(s);
      case Collection<?> c -> c.size();
      case Map<?, ?> m -> m.size();
      case Undefined u -> 0;
      case null, default -> throw new EvalError("object of type '" + typeName(v) + "' has no len()");
    };
  }

  /** What {@code for x in v} visits: list items, dict keys, string characters. */
  static List<Object> iterate(Object v) {
    return switch (v) {
      case List<?> l -> new ArrayList<>(l);
      case Map<?, ?> m -> new ArrayList<>(m.keySet());
      case String s -> chars(s);
      case Undefined u -> new ArrayList<>();
      case null, default -> throw new EvalError("'" + typeName(v) + "' object is not iterable");
    };
  }

  static boolean contains(Object container, Object item) {
    return switch (container) {
      case String s -> {
        if (!(item instanceof String t)) {
          throw new EvalError(
              "'in <string>' requires string as left operand, not " + typeName(item));
        }
        yield s.contains(t);
      }
      case Map<?, ?> m -> findKey(m, item) != MISSING;
      case Undefined u -> false;
      case List<?> list -> {
        for (Object o : list) {
          if (eq(o, item)) {
            yield true;
          }
        }
        yield false;
      }
      case null, default ->
          throw new EvalError("argument of type '" + typeName(container) + "' is not iterable");
    };
  }

  // ---- values coming from Java callers ----

  /**
   * Copies a caller's value into the template value model: other integral types become Long,
   * float becomes Double, arrays and collections become lists, maps keep their order.
   */
  static Object fromJava(Object v) {
    return switch (v) {
      case null -> null;
      case String s -> s;
      case Boolean b -> b;
      case Long l -> l;
      case Integer i -> i.longValue();
      case Short s -> s.longValue();
      case Byte b -> b.longValue();
      case Double d -> d;
      case Float f -> f.doubleValue();
      case java.math.BigInteger b -> b.longValueExact();
      case BigDecimal b -> b.doubleValue();
      case Character c -> c.toString();
      case Tuple t -> t;
      case Map<?, ?> m -> {
        Map<Object, Object> out = new LinkedHashMap<>();
        m.forEach((k, value) -> out.put(fromJava(k), fromJava(value)));
        yield out;
      }
      case Iterable<?> it -> {
        List<Object> out = new ArrayList<>();
        for (Iterator<?> i = it.iterator(); i.hasNext(); ) {
          out.add(fromJava(i.next()));
        }
        yield out;
      }
      case Object[] array -> {
        List<Object> out = new ArrayList<>();
        for (Object o : array) {
          out.add(fromJava(o));
        }
        yield out;
      }
      case Callable c -> c;
      default ->
          throw new IllegalArgumentException(
              "template variables must be strings, numbers, booleans, null, lists or maps, not "
                  + v.getClass().getName());
    };
  }
}
