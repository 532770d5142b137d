package dev.selma.engine.tokenizer.template;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * jinja2's built-in filters that chat templates use, with jinja2's definitions, and transformers'
 * own {@code tojson}. Where jinja2 returns a lazy generator ({@code map}, {@code select}, ...) this
 * returns a list, which renders the same wherever the template goes on to iterate or join it.
 */
final class Filters {
  @FunctionalInterface
  private interface Filter {
    Object apply(Object value, List<Object> args, Map<String, Object> kwargs);
  }

  private static final Map<String, Filter> FILTERS = Map.ofEntries(
      Map.entry("trim", Filters::trim),
      Map.entry("length", Filters::length),
      Map.entry("count", Filters::length),
      Map.entry("lower", (v, a, k) -> {
        Args.bind("lower", a, k);
        return Py.str(v).toLowerCase(Locale.ROOT);
      }),
      Map.entry("upper", (v, a, k) -> {
        Args.bind("upper", a, k);
        return Py.str(v).toUpperCase(Locale.ROOT);
      }),
      Map.entry("capitalize", (v, a, k) -> {
        Args.bind("capitalize", a, k);
        return Methods.capitalize(Py.str(v));
      }),
      Map.entry("title", (v, a, k) -> {
        Args.bind("title", a, k);
        return title(Py.str(v));
      }),
      Map.entry("string", (v, a, k) -> {
        Args.bind("string", a, k);
        return Py.str(v);
      }),
      Map.entry("safe", (v, a, k) -> {
        Args.bind("safe", a, k);
        return Py.str(v);
      }),
      Map.entry("escape", Filters::escape),
      Map.entry("e", Filters::escape),
      Map.entry("tojson", Filters::tojson),
      Map.entry("join", Filters::join),
      Map.entry("default", Filters::defaultValue),
      Map.entry("d", Filters::defaultValue),
      Map.entry("first", Filters::first),
      Map.entry("last", Filters::last),
      Map.entry("list", (v, a, k) -> {
        Args.bind("list", a, k);
        return Py.iterate(v);
      }),
      Map.entry("items", Filters::items),
      Map.entry("int", Filters::toInt),
      Map.entry("float", Filters::toFloat),
      Map.entry("abs", Filters::abs),
      Map.entry("replace", Filters::replace),
      Map.entry("indent", Filters::indent),
      Map.entry("reverse", Filters::reverse),
      Map.entry("sort", Filters::sort),
      Map.entry("unique", Filters::unique),
      Map.entry("attr", Filters::attr),
      Map.entry("map", Filters::map),
      Map.entry("select", (v, a, k) -> select(v, a, k, false, true)),
      Map.entry("reject", (v, a, k) -> select(v, a, k, false, false)),
      Map.entry("selectattr", (v, a, k) -> select(v, a, k, true, true)),
      Map.entry("rejectattr", (v, a, k) -> select(v, a, k, true, false)));

  private Filters() {}

  static boolean exists(String name) {
    return FILTERS.containsKey(name);
  }

  static Object apply(String name, Object value, List<Object> args, Map<String, Object> kwargs) {
    Filter filter = FILTERS.get(name);
    if (filter == null) {
      throw new EvalError("unknown filter '" + name + "'");
    }
    return filter.apply(value, args, kwargs);
  }

  private static Object trim(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object chars = Args.bind("trim", args, kwargs, "chars", null)[0];
    return Py.strip(Py.str(value), chars == null ? null : Args.string("trim", chars));
  }

  private static Object length(Object value, List<Object> args, Map<String, Object> kwargs) {
    Args.bind("length", args, kwargs);
    return Py.len(value);
  }

  private static Object escape(Object value, List<Object> args, Map<String, Object> kwargs) {
    Args.bind("escape", args, kwargs);
    String s = Py.str(value);
    StringBuilder out = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '&' -> out.append("&amp;");
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        case '"' -> out.append("&#34;");
        case '\'' -> out.append("&#39;");
        default -> out.append(c);
      }
    }
    return out.toString();
  }

  /** transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False). */
  private static Object tojson(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("tojson", args, kwargs,
        "ensure_ascii", false, "indent", null, "separators", null, "sort_keys", false);
    return Json.dumps(value, a[1], a[2], Py.truthy(a[3]), Py.truthy(a[0]));
  }

  private static Object join(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("join", args, kwargs, "d", "", "attribute", null);
    List<Object> items = Py.iterate(value);
    StringBuilder out = new StringBuilder();
    String separator = Py.str(a[0]);
    for (int i = 0; i < items.size(); i++) {
      Object item = a[1] == null ? items.get(i) : attributeGetter(a[1], null).apply(items.get(i));
      out.append(i > 0 ? separator : "").append(Py.str(item));
    }
    return out.toString();
  }

  private static Object defaultValue(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("default", args, kwargs, "default_value", "", "boolean", false);
    return value instanceof Undefined || (Py.truthy(a[1]) && !Py.truthy(value)) ? a[0] : value;
  }

  private static Object first(Object value, List<Object> args, Map<String, Object> kwargs) {
    Args.bind("first", args, kwargs);
    List<Object> items = Py.iterate(value);
    return items.isEmpty() ? Undefined.withMessage("No first item, sequence was empty.") : items.get(0);
  }

  private static Object last(Object value, List<Object> args, Map<String, Object> kwargs) {
    Args.bind("last", args, kwargs);
    List<Object> items = Py.iterate(value);
    return items.isEmpty() ? Undefined.withMessage("No last item, sequence was empty.") : items.getLast();
  }

  private static Object items(Object value, List<Object> args, Map<String, Object> kwargs) {
    Args.bind("items", args, kwargs);
    return switch (value) {
      case Undefined u -> new ArrayList<>();
      case Map<?, ?> map -> Methods.items(map);
      case null, default -> throw new EvalError("Can only get item pairs from a mapping.");
    };
  }

  private static Object toInt(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("int", args, kwargs, "default", 0L, "base", 10L);
    if (value instanceof Undefined u) {
      throw u.error();
    }
    if (value instanceof String s) {
      try {
        return parseInt(s, Args.integer("int", a[1]));
      } catch (NumberFormatException e) {
        Double d = parseFloat(s);
        return d == null || d.isNaN() || d.isInfinite() ? a[0] : (long) d.doubleValue();
      }
    }
    return switch (Py.numeric(value)) {
      case Long l -> l;
      case Double d when !d.isNaN() && !d.isInfinite() -> (long) d.doubleValue();
      case null, default -> a[0];
    };
  }

  private static Object toFloat(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("float", args, kwargs, "default", 0.0);
    if (value instanceof Undefined u) {
      throw u.error();
    }
    if (value instanceof String s) {
      Double d = parseFloat(s);
      return d == null ? a[0] : d;
    }
    return Py.isNumber(value) ? Py.toDouble(value) : a[0];
  }

  /** Python's int(str, base): sign, underscores, and a 0x/0o/0b prefix matching the base (or base 0). */
  private static long parseInt(String s, long base) {
    String t = Py.strip(s, null).replace("_", "").toLowerCase(Locale.ROOT);
    boolean negative = t.startsWith("-");
    if (negative || t.startsWith("+")) {
      t = t.substring(1);
    }
    int radix = (int) base;
    for (String[] prefix : new String[][] {{"0x", "16"}, {"0o", "8"}, {"0b", "2"}}) {
      int prefixRadix = Integer.parseInt(prefix[1]);
      if (t.startsWith(prefix[0]) && (radix == 0 || radix == prefixRadix)) {
        t = t.substring(2);
        radix = prefixRadix;
      }
    }
    long value = Long.parseLong(t, radix == 0 ? 10 : radix);
    return negative ? -value : value;
  }

  /** Python's float(str): decimal notation, inf and nan; null when it would raise ValueError. */
  private static Double parseFloat(String s) {
    String t = Py.strip(s, null).replace("_", "").toLowerCase(Locale.ROOT);
    String unsigned = t.startsWith("+") || t.startsWith("-") ? t.substring(1) : t;
    double sign = t.startsWith("-") ? -1 : 1;
    if (unsigned.equals("inf") || unsigned.equals("infinity")) {
      return sign * Double.POSITIVE_INFINITY;
    }
    if (unsigned.equals("nan")) {
      return Double.NaN;
    }
    if (!unsigned.matches("(\\d+\\.?\\d*|\\.\\d+)(e[+-]?\\d+)?")) {
      return null;
    }
    return Double.parseDouble(t);
  }

  private static Object abs(Object value, List<Object> args, Map<String, Object> kwargs) {
    Args.bind("abs", args, kwargs);
    return switch (Py.numeric(value)) {
      case Long l -> Math.abs(l);
      case Double d -> Math.abs(d);
      case Undefined u -> throw u.error();
      case null, default -> throw new EvalError("bad operand type for abs(): '" + Py.typeName(value) + "'");
    };
  }

  private static Object replace(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("replace", args, kwargs, "old", Args.REQUIRED, "new", Args.REQUIRED, "count", null);
    long count = a[2] == null ? -1 : Args.integer("replace", a[2]);
    return Methods.replace(Py.str(value), Py.str(a[0]), Py.str(a[1]), count);
  }

  /** jinja2's indent: lines after the first are indented; blank lines only if {@code blank}. */
  private static Object indent(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("indent", args, kwargs, "width", 4L, "first", false, "blank", false);
    String indentation = a[0] instanceof String s ? s : " ".repeat((int) Math.max(0, Args.integer("indent", a[0])));
    // jinja2 appends a newline before splitting, so a trailing newline yields no extra line.
    List<Object> lines = Methods.splitlines(Py.str(value) + "\n", false);
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < lines.size(); i++) {
      String line = (String) lines.get(i);
      if (i > 0) {
        out.append('\n');
        if (Py.truthy(a[2]) || !line.isEmpty()) {
          out.append(indentation);
        }
      }
      out.append(line);
    }
    return Py.truthy(a[1]) ? indentation + out : out.toString();
  }

  private static Object reverse(Object value, List<Object> args, Map<String, Object> kwargs) {
    Args.bind("reverse", args, kwargs);
    if (value instanceof String s) {
      return new StringBuilder(s).reverse().toString();
    }
    List<Object> items = Py.iterate(value);
    java.util.Collections.reverse(items);
    return items;
  }

  private static Object sort(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("sort", args, kwargs, "reverse", false, "case_sensitive", false, "attribute", null);
    List<Object> items = Py.iterate(value);
    java.util.function.Function<Object, Object> key = sortKey(a[2], Py.truthy(a[1]));
    Comparator<Object> order = (x, y) -> Py.compare(key.apply(x), key.apply(y));
    items.sort(Py.truthy(a[0]) ? order.reversed() : order);
    return items;
  }

  private static Object unique(Object value, List<Object> args, Map<String, Object> kwargs) {
    Object[] a = Args.bind("unique", args, kwargs, "case_sensitive", false, "attribute", null);
    java.util.function.Function<Object, Object> key = sortKey(a[1], Py.truthy(a[0]));
    List<Object> seen = new ArrayList<>();
    List<Object> out = new ArrayList<>();
    for (Object item : Py.iterate(value)) {
      Object k = key.apply(item);
      if (seen.stream().noneMatch(s -> Py.eq(s, k))) {
        seen.add(k);
        out.add(item);
      }
    }
    return out;
  }

  private static java.util.function.Function<Object, Object> sortKey(Object attribute, boolean caseSensitive) {
    java.util.function.Function<Object, Object> get =
        attribute == null ? v -> v : attributeGetter(attribute, null);
    return caseSensitive ? get : v -> get.apply(v) instanceof String s ? s.toLowerCase(Locale.ROOT) : get.apply(v);
  }

  /** Python's getattr only: unlike {@code x.name}, a dict key is not an attribute. */
  private static Object attr(Object value, List<Object> args, Map<String, Object> kwargs) {
    String name = Args.string("attr", Args.bind("attr", args, kwargs, "name", Args.REQUIRED)[0]);
    if (value instanceof Namespace || value instanceof LoopContext || value instanceof Undefined) {
      return Access.attribute(value, name);
    }
    Object method = Methods.bound(value, name);
    return method != null ? method : Undefined.attribute(value, name);
  }

  private static Object map(Object value, List<Object> args, Map<String, Object> kwargs) {
    java.util.function.Function<Object, Object> function;
    if (args.isEmpty() && kwargs.containsKey("attribute")) {
      Map<String, Object> rest = new java.util.LinkedHashMap<>(kwargs);
      Object attribute = rest.remove("attribute");
      Object fallback = rest.remove("default");
      if (!rest.isEmpty()) {
        throw new EvalError("map() got an unexpected keyword argument '" + rest.keySet().iterator().next() + "'");
      }
      function = attributeGetter(attribute, fallback);
    } else {
      if (args.isEmpty()) {
        throw new EvalError("map() needs a filter name or attribute=...");
      }
      String filter = Args.string("map", args.get(0));
      if (!exists(filter)) {
        throw new EvalError("unknown filter '" + filter + "'");
      }
      List<Object> rest = args.subList(1, args.size());
      function = item -> apply(filter, item, rest, kwargs);
    }
    List<Object> out = new ArrayList<>();
    for (Object item : Py.iterate(value)) {
      out.add(function.apply(item));
    }
    return out;
  }

  private static Object select(Object value, List<Object> args, Map<String, Object> kwargs, boolean byAttribute, boolean keep) {
    int offset = byAttribute ? 1 : 0;
    String name = byAttribute ? "selectattr" : "select";
    if (byAttribute && args.isEmpty()) {
      throw new EvalError(name + "() missing required argument 'attribute'");
    }
    java.util.function.Function<Object, Object> get =
        byAttribute ? attributeGetter(args.get(0), null) : v -> v;
    java.util.function.Predicate<Object> check;
    if (args.size() > offset) {
      String test = Args.string(name, args.get(offset));
      if (!Tests.exists(test)) {
        throw new EvalError("unknown test '" + test + "'");
      }
      List<Object> testArgs = args.subList(offset + 1, args.size());
      check = v -> Tests.apply(test, v, testArgs);
    } else {
      check = Py::truthy;
    }
    List<Object> out = new ArrayList<>();
    for (Object item : Py.iterate(value)) {
      if (check.test(get.apply(item)) == keep) {
        out.add(item);
      }
    }
    return out;
  }

  /** jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0, each as an item access. */
  private static java.util.function.Function<Object, Object> attributeGetter(Object attribute, Object fallback) {
    List<Object> parts = new ArrayList<>();
    if (attribute instanceof String s) {
      for (String part : s.split("\\.", -1)) {
        parts.add(part.matches("\\d+") ? (Object) Long.parseLong(part) : part);
      }
    } else {
      parts.add(attribute);
    }
    return item -> {
      Object v = item;
      for (Object part : parts) {
        v = Access.item(v, part);
      }
      return v instanceof Undefined && fallback != null ? fallback : v;
    };
  }

  /** jinja2's title filter: upper-case the first letter of each run after '-', space or an opening bracket. */
  private static String title(String s) {
    StringBuilder out = new StringBuilder(s.length());
    boolean atStart = true;
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      boolean separator = Py.isSpace(cp) || "-({[<".indexOf(cp) >= 0;
      String c = Character.toString(cp);
      if (separator) {
        out.append(c);
        atStart = true;
      } else {
        out.append(atStart ? c.toUpperCase(Locale.ROOT) : c.toLowerCase(Locale.ROOT));
        atStart = false;
      }
      i += Character.charCount(cp);
    }
    return out.toString();
  }
}
