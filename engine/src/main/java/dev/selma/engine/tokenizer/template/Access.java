package dev.selma.engine.tokenizer.template;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Attribute and item access as jinja2's sandbox does it: {@code x.name} tries the attribute (a
 * method), then the key; {@code x[key]} tries the key, then, for string keys, the attribute. What
 * is not found is {@link Undefined}, so that {@code message.tool_calls} on a message without tool
 * calls is simply falsy. Access on an undefined value is an error.
 */
final class Access {
  private Access() {}

  static Object attribute(Object owner, String name) {
    switch (owner) {
      case null -> {
        return Undefined.attribute(null, name);
      }
      case Undefined u -> throw u.error();
      case Namespace n -> {
        Object key = Py.findKey(n.attributes(), name);
        return key == Py.MISSING ? Undefined.attribute(n, name) : n.attributes().get(key);
      }
      case LoopContext loop -> {
        return loop.attribute(name);
      }
      default -> {
        Object method = Methods.bound(owner, name);
        if (method != null) {
          return method;
        }
        if (owner instanceof Map<?, ?> map) {
          Object key = Py.findKey(map, name);
          if (key != Py.MISSING) {
            return map.get(key);
          }
        }
        return Undefined.attribute(owner, name);
      }
    }
  }

  static Object item(Object owner, Object key) {
    switch (owner) {
      case Undefined u -> throw u.error();
      case Map<?, ?> map -> {
        Object found = Py.findKey(map, key);
        if (found != Py.MISSING) {
          return map.get(found);
        }
      }
      case String s when Py.numeric(key) instanceof Long index -> {
        List<Object> chars = Py.chars(s);
        int at = position(chars.size(), index);
        return at < 0 ? Undefined.attribute(owner, key) : chars.get(at);
      }
      case List<?> list when Py.numeric(key) instanceof Long index -> {
        int at = position(list.size(), index);
        return at < 0 ? Undefined.attribute(owner, key) : list.get(at);
      }
      case null, default -> {}
    }
    if (key instanceof String name && owner != null) {
      Object viaAttribute = owner instanceof Namespace || owner instanceof LoopContext
          ? attribute(owner, name)
          : Methods.bound(owner, name);
      if (viaAttribute != null) {
        return viaAttribute;
      }
    }
    return Undefined.attribute(owner, key);
  }

  private static int position(int size, long index) {
    long at = index < 0 ? index + size : index;
    return at < 0 || at >= size ? -1 : (int) at;
  }

  /** Python slicing of strings (by code point), lists and tuples. */
  static Object slice(Object owner, Object start, Object stop, Object step) {
    if (owner instanceof Undefined u) {
      throw u.error();
    }
    List<?> items =
        switch (owner) {
          case String s -> Py.chars(s);
          case List<?> l -> l;
          case null, default -> throw new EvalError("'" + Py.typeName(owner) + "' object is not subscriptable");
        };
    long n = items.size();
    long by = step == null ? 1 : bound(step);
    if (by == 0) {
      throw new EvalError("slice step cannot be zero");
    }
    long from = start == null ? (by < 0 ? n - 1 : 0) : clamp(bound(start), n, by);
    long to = stop == null ? (by < 0 ? -1 : n) : clamp(bound(stop), n, by);
    List<Object> out = new ArrayList<>();
    for (long i = from; by > 0 ? i < to : i > to; i += by) {
      out.add(items.get((int) i));
    }
    return switch (owner) {
      case String s -> String.join("", out.stream().map(String.class::cast).toList());
      case Py.Tuple t -> new Py.Tuple(out);
      default -> out;
    };
  }

  private static long bound(Object index) {
    if (Py.numeric(index) instanceof Long l) {
      return l;
    }
    throw new EvalError("slice indices must be integers or None, not " + Py.typeName(index));
  }

  private static long clamp(long index, long n, long step) {
    if (index < 0) {
      index += n;
      if (index < 0) {
        return step < 0 ? -1 : 0;
      }
    } else if (index >= n) {
      return step < 0 ? n - 1 : n;
    }
    return index;
  }
}
