package dev.selma.engine.tokenizer.template;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * transformers' {@code tojson} filter, which replaces jinja2's (that one escapes HTML characters):
 * {@code json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)} with
 * those keywords overridable from the template.
 */
final class Json {
  private final String indent;
  private final String itemSeparator;
  private final String keySeparator;
  private final boolean sortKeys;
  private final boolean ensureAscii;
  private final StringBuilder out = new StringBuilder();

  private Json(String indent, String itemSeparator, String keySeparator, boolean sortKeys, boolean ensureAscii) {
    this.indent = indent;
    this.itemSeparator = itemSeparator;
    this.keySeparator = keySeparator;
    this.sortKeys = sortKeys;
    this.ensureAscii = ensureAscii;
  }

  /**
   * @param indent null, a Long (that many spaces) or a String, as json.dumps accepts
   * @param separators null or a two-element list (item separator, key separator)
   */
  static String dumps(Object value, Object indent, Object separators, boolean sortKeys, boolean ensureAscii) {
    String indentText =
        switch (indent) {
          case null -> null;
          case Long n -> " ".repeat((int) Math.max(0, n));
          case String s -> s;
          default -> throw new EvalError("tojson indent must be an integer or a string");
        };
    String item = indentText == null ? ", " : ",";
    String key = ": ";
    if (separators != null) {
      if (!(separators instanceof List<?> pair) || pair.size() != 2
          || !(pair.get(0) instanceof String a) || !(pair.get(1) instanceof String b)) {
        throw new EvalError("tojson separators must be a pair of strings");
      }
      item = a;
      key = b;
    }
    Json json = new Json(indentText, item, key, sortKeys, ensureAscii);
    json.write(value, 0);
    return json.out.toString();
  }

  private void write(Object v, int level) {
    switch (v) {
      case null -> out.append("null");
      case Boolean b -> out.append(b ? "true" : "false");
      case Long l -> out.append(l);
      case Double d -> out.append(number(d));
      case String s -> string(s);
      case List<?> list -> {
        if (list.isEmpty()) {
          out.append("[]");
          return;
        }
        out.append('[');
        for (int i = 0; i < list.size(); i++) {
          separator(i, level + 1);
          write(list.get(i), level + 1);
        }
        close(level, ']');
      }
      case Map<?, ?> map -> {
        if (map.isEmpty()) {
          out.append("{}");
          return;
        }
        List<Object> keys = new ArrayList<>(map.keySet());
        if (sortKeys) {
          keys.sort(Py::compare);
        }
        out.append('{');
        for (int i = 0; i < keys.size(); i++) {
          separator(i, level + 1);
          string(key(keys.get(i)));
          out.append(keySeparator);
          write(map.get(keys.get(i)), level + 1);
        }
        close(level, '}');
      }
      default -> throw new EvalError("Object of type " + Py.typeName(v) + " is not JSON serializable");
    }
  }

  private void separator(int index, int level) {
    if (index > 0) {
      out.append(itemSeparator);
    }
    if (indent != null) {
      out.append('\n').append(indent.repeat(level));
    }
  }

  private void close(int level, char bracket) {
    if (indent != null) {
      out.append('\n').append(indent.repeat(level));
    }
    out.append(bracket);
  }

  private static String number(double d) {
    if (Double.isNaN(d)) {
      return "NaN";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "Infinity" : "-Infinity";
    }
    return Py.floatRepr(d);
  }

  private static String key(Object k) {
    return switch (k) {
      case String s -> s;
      case null -> "null";
      case Boolean b -> b ? "true" : "false";
      case Long l -> l.toString();
      case Double d -> number(d);
      default ->
          throw new EvalError("keys must be str, int, float, bool or None, not " + Py.typeName(k));
    };
  }

  private void string(String s) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        default -> {
          if (c < 0x20 || (ensureAscii && c > 0x7e)) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }
}
