package dev.selma.engine.tokenizer.template;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The Python methods of strings, dicts and lists that chat templates call ({@code
 * message.content.startswith('<tool_response>')}, {@code tool.items()}, ...). Methods that would
 * mutate a value are hidden, as in jinja2's immutable sandbox that transformers uses.
 */
final class Methods {
  private static final Set<String> LIST_MUTATORS =
      Set.of("append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort");
  private static final Set<String> DICT_MUTATORS =
      Set.of("clear", "pop", "popitem", "setdefault", "update");

  private Methods() {}

  /** The bound method {@code receiver.name}, an unsafe-access undefined, or null if there is none. */
  static Object bound(Object receiver, String name) {
    return switch (receiver) {
      case String s -> stringMethod(s, name);
      case Py.Tuple t -> listMethod(t, name);
      case List<?> l -> LIST_MUTATORS.contains(name) ? Undefined.unsafe(l, name) : listMethod(l, name);
      case Map<?, ?> m -> DICT_MUTATORS.contains(name) ? Undefined.unsafe(m, name) : dictMethod(m, name);
      case null, default -> null;
    };
  }

  private static Callable method(String name, Callable body) {
    return new Callable() {
      @Override
      public Object call(List<Object> args, Map<String, Object> kwargs) {
        return body.call(args, kwargs);
      }

      @Override
      public String kind() {
        return "builtin_function_or_method";
      }

      @Override
      public String toString() {
        return name;
      }
    };
  }

  private static Object listMethod(List<?> list, String name) {
    return switch (name) {
      case "index" ->
          method(
              name,
              (args, kwargs) -> {
                Object x = Args.bind("index", args, kwargs, "value", Args.REQUIRED)[0];
                for (int i = 0; i < list.size(); i++) {
                  if (Py.eq(list.get(i), x)) {
                    return (long) i;
                  }
                }
                throw new EvalError(Py.repr(x) + " is not in list");
              });
      case "count" ->
          method(
              name,
              (args, kwargs) -> {
                Object x = Args.bind("count", args, kwargs, "value", Args.REQUIRED)[0];
                return list.stream().filter(v -> Py.eq(v, x)).count();
              });
      case "copy" -> method(name, (args, kwargs) -> new ArrayList<Object>(list));
      default -> null;
    };
  }

  private static Object dictMethod(Map<?, ?> map, String name) {
    return switch (name) {
      case "items" ->
          method(
              name,
              (args, kwargs) -> {
                Args.bind("items", args, kwargs);
                return new Py.View("dict_items", items(map));
              });
      case "keys" ->
          method(
              name,
              (args, kwargs) -> {
                Args.bind("keys", args, kwargs);
                return new Py.View("dict_keys", new ArrayList<Object>(map.keySet()));
              });
      case "values" ->
          method(
              name,
              (args, kwargs) -> {
                Args.bind("values", args, kwargs);
                return new Py.View("dict_values", new ArrayList<Object>(map.values()));
              });
      case "get" ->
          method(
              name,
              (args, kwargs) -> {
                Object[] a = Args.bind("get", args, kwargs, "key", Args.REQUIRED, "default", null);
                Object key = Py.findKey(map, a[0]);
                return key == Py.MISSING ? a[1] : map.get(key);
              });
      case "copy" -> method(name, (args, kwargs) -> new java.util.LinkedHashMap<Object, Object>(map));
      default -> null;
    };
  }

  static List<Object> items(Map<?, ?> map) {
    List<Object> out = new ArrayList<>(map.size());
    map.forEach((k, v) -> out.add(new Py.Tuple(java.util.Arrays.asList(k, v))));
    return out;
  }

  private static Object stringMethod(String s, String name) {
    return switch (name) {
      case "strip", "lstrip", "rstrip" ->
          method(
              name,
              (args, kwargs) -> {
                Object chars = Args.bind(name, args, kwargs, "chars", null)[0];
                String set = chars == null ? null : Args.string(name, chars);
                return switch (name) {
                  case "strip" -> Py.strip(s, set);
                  case "lstrip" -> Py.lstrip(s, set);
                  default -> Py.rstrip(s, set);
                };
              });
      case "split", "rsplit" ->
          method(
              name,
              (args, kwargs) -> {
                Object[] a = Args.bind(name, args, kwargs, "sep", null, "maxsplit", -1L);
                String sep = a[0] == null ? null : Args.string(name, a[0]);
                long max = Args.integer(name, a[1]);
                return name.equals("split") ? split(s, sep, max) : rsplit(s, sep, max);
              });
      case "splitlines" ->
          method(
              name,
              (args, kwargs) -> {
                Object keep = Args.bind(name, args, kwargs, "keepends", false)[0];
                return splitlines(s, Py.truthy(keep));
              });
      case "startswith", "endswith" ->
          method(
              name,
              (args, kwargs) -> {
                Object affix = Args.bind(name, args, kwargs, "prefix", Args.REQUIRED)[0];
                List<Object> options = affix instanceof Py.Tuple t ? t : List.of(Args.string(name, affix));
                for (Object option : options) {
                  String o = Args.string(name, option);
                  if (name.equals("startswith") ? s.startsWith(o) : s.endsWith(o)) {
                    return true;
                  }
                }
                return false;
              });
      case "upper" -> noArgs(name, () -> s.toUpperCase(Locale.ROOT));
      case "lower" -> noArgs(name, () -> s.toLowerCase(Locale.ROOT));
      case "title" -> noArgs(name, () -> title(s));
      case "capitalize" -> noArgs(name, () -> capitalize(s));
      case "isdigit" -> noArgs(name, () -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit));
      case "isalpha" -> noArgs(name, () -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter));
      case "isalnum" ->
          noArgs(name, () -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit));
      case "isspace" -> noArgs(name, () -> !s.isEmpty() && s.codePoints().allMatch(Py::isSpace));
      case "isupper" -> noArgs(name, () -> hasCased(s) && s.equals(s.toUpperCase(Locale.ROOT)));
      case "islower" -> noArgs(name, () -> hasCased(s) && s.equals(s.toLowerCase(Locale.ROOT)));
      case "replace" ->
          method(
              name,
              (args, kwargs) -> {
                Object[] a = Args.bind(name, args, kwargs, "old", Args.REQUIRED, "new", Args.REQUIRED, "count", -1L);
                return replace(s, Args.string(name, a[0]), Args.string(name, a[1]), Args.integer(name, a[2]));
              });
      case "find", "rfind", "count" ->
          method(
              name,
              (args, kwargs) -> {
                String sub = Args.string(name, Args.bind(name, args, kwargs, "sub", Args.REQUIRED)[0]);
                return switch (name) {
                  case "find" -> codePointIndex(s, s.indexOf(sub));
                  case "rfind" -> codePointIndex(s, s.lastIndexOf(sub));
                  default -> count(s, sub);
                };
              });
      case "join" ->
          method(
              name,
              (args, kwargs) -> {
                Object items = Args.bind(name, args, kwargs, "iterable", Args.REQUIRED)[0];
                StringBuilder out = new StringBuilder();
                List<Object> list = Py.iterate(items);
                for (int i = 0; i < list.size(); i++) {
                  if (!(list.get(i) instanceof String item)) {
                    throw new EvalError(
                        "sequence item " + i + ": expected str instance, " + Py.typeName(list.get(i)) + " found");
                  }
                  out.append(i > 0 ? s : "").append(item);
                }
                return out.toString();
              });
      default -> null;
    };
  }

  private static Callable noArgs(String name, java.util.function.Supplier<Object> body) {
    return method(
        name,
        (args, kwargs) -> {
          Args.bind(name, args, kwargs);
          return body.get();
        });
  }

  private static boolean hasCased(String s) {
    return s.codePoints().anyMatch(cp -> Character.isUpperCase(cp) || Character.isLowerCase(cp));
  }

  private static long codePointIndex(String s, int charIndex) {
    return charIndex < 0 ? -1 : s.codePointCount(0, charIndex);
  }

  private static long count(String s, String sub) {
    if (sub.isEmpty()) {
      return Py.length(s) + 1;
    }
    long n = 0;
    for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) {
      n++;
    }
    return n;
  }

  /** Python's str.title(): a cased letter after a cased letter is lowercased, others titlecased. */
  static String title(String s) {
    StringBuilder out = new StringBuilder(s.length());
    boolean previousCased = false;
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      boolean cased = Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
      if (cased) {
        out.append(previousCased ? Character.toString(cp).toLowerCase(Locale.ROOT) : titleCase(cp));
      } else {
        out.appendCodePoint(cp);
      }
      previousCased = cased;
      i += Character.charCount(cp);
    }
    return out.toString();
  }

  static String capitalize(String s) {
    if (s.isEmpty()) {
      return s;
    }
    int first = s.codePointAt(0);
    return titleCase(first) + s.substring(Character.charCount(first)).toLowerCase(Locale.ROOT);
  }

  private static String titleCase(int cp) {
    int title = Character.toTitleCase(cp);
    // Characters like 'ß' have no single-character title case; Python then uses the full upper case.
    return title == cp && Character.isLowerCase(cp)
        ? Character.toString(cp).toUpperCase(Locale.ROOT)
        : Character.toString(title);
  }

  static String replace(String s, String old, String replacement, long count) {
    long limit = count < 0 ? Long.MAX_VALUE : count;
    StringBuilder out = new StringBuilder();
    if (old.isEmpty()) {
      long done = 0;
      int i = 0;
      while (i <= s.length()) {
        if (done < limit) {
          out.append(replacement);
          done++;
        }
        if (i == s.length()) {
          break;
        }
        int cp = s.codePointAt(i);
        out.appendCodePoint(cp);
        i += Character.charCount(cp);
      }
      return out.toString();
    }
    int from = 0;
    long done = 0;
    for (int i = s.indexOf(old); i >= 0 && done < limit; i = s.indexOf(old, from)) {
      out.append(s, from, i).append(replacement);
      from = i + old.length();
      done++;
    }
    return out.append(s, from, s.length()).toString();
  }

  static List<Object> split(String s, String sep, long maxsplit) {
    List<Object> out = new ArrayList<>();
    long limit = maxsplit < 0 ? Long.MAX_VALUE : maxsplit;
    if (sep == null) {
      int i = 0;
      int n = s.length();
      while (true) {
        while (i < n && Py.isSpace(s.charAt(i))) {
          i++;
        }
        if (i >= n) {
          return out;
        }
        if (out.size() == limit) {
          out.add(s.substring(i));
          return out;
        }
        int start = i;
        while (i < n && !Py.isSpace(s.charAt(i))) {
          i++;
        }
        out.add(s.substring(start, i));
      }
    }
    if (sep.isEmpty()) {
      throw new EvalError("empty separator");
    }
    int from = 0;
    for (int i = s.indexOf(sep); i >= 0 && out.size() < limit; i = s.indexOf(sep, from)) {
      out.add(s.substring(from, i));
      from = i + sep.length();
    }
    out.add(s.substring(from));
    return out;
  }

  static List<Object> rsplit(String s, String sep, long maxsplit) {
    if (maxsplit < 0) {
      return split(s, sep, maxsplit);
    }
    List<Object> out = new ArrayList<>();
    if (sep == null) {
      int i = s.length();
      while (true) {
        while (i > 0 && Py.isSpace(s.charAt(i - 1))) {
          i--;
        }
        if (i <= 0) {
          break;
        }
        if (out.size() == maxsplit) {
          out.add(s.substring(0, i));
          break;
        }
        int end = i;
        while (i > 0 && !Py.isSpace(s.charAt(i - 1))) {
          i--;
        }
        out.add(s.substring(i, end));
      }
    } else {
      if (sep.isEmpty()) {
        throw new EvalError("empty separator");
      }
      int end = s.length();
      for (int i = s.lastIndexOf(sep, end - sep.length());
          i >= 0 && out.size() < maxsplit;
          i = s.lastIndexOf(sep, end - sep.length())) {
        out.add(s.substring(i + sep.length(), end));
        end = i;
      }
      out.add(s.substring(0, end));
    }
    java.util.Collections.reverse(out);
    return out;
  }

  static List<Object> splitlines(String s, boolean keepEnds) {
    List<Object> out = new ArrayList<>();
    int start = 0;
    int i = 0;
    while (i < s.length()) {
      char c = s.charAt(i);
      int breakLength = 0;
      if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
        breakLength = 2;
      } else if (c == '\n' || c == '\r' || c == '\u000b' || c == '\f' || c == 0x1c || c == 0x1d
          || c == 0x1e || c == 0x85 || c == '\u2028' || c == '\u2029') {
        breakLength = 1;
      }
      if (breakLength > 0) {
        out.add(s.substring(start, keepEnds ? i + breakLength : i));
        i += breakLength;
        start = i;
      } else {
        i++;
      }
    }
    if (start < s.length()) {
      out.add(s.substring(start));
    }
    return out;
  }
}
