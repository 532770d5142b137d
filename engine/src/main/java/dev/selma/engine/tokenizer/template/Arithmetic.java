package dev.selma.engine.tokenizer.template;

import java.util.ArrayList;
import java.util.List;

/** Python's operators on template values, as jinja2 evaluates them. */
final class Arithmetic {
  private Arithmetic() {}

  static Object unary(String op, Object value) {
    if (value instanceof Undefined u) {
      throw u.error();
    }
    return switch (Py.numeric(value)) {
      case Long l when op.equals("-") -> Math.negateExact(l);
      case Double d when op.equals("-") -> -d;
      case Long l -> l;
      case Double d -> d;
      case null, default -> throw new EvalError("bad operand type for unary " + op + ": '" + Py.typeName(value) + "'");
    };
  }

  static Object binary(String op, Object a, Object b) {
    if (op.equals("~")) {
      return Py.str(a) + Py.str(b);
    }
    if (a instanceof Undefined u) {
      throw u.error();
    }
    if (b instanceof Undefined u) {
      throw u.error();
    }
    if (Py.isNumber(a) && Py.isNumber(b)) {
      return numeric(op, Py.numeric(a), Py.numeric(b));
    }
    switch (op) {
      case "+" -> {
        if (a instanceof String s && b instanceof String t) {
          return s + t;
        }
        if (a instanceof List<?> l && b instanceof List<?> m && (a instanceof Py.Tuple) == (b instanceof Py.Tuple)) {
          List<Object> out = new ArrayList<>(l);
          out.addAll(m);
          return a instanceof Py.Tuple ? new Py.Tuple(out) : out;
        }
        if (a instanceof String) {
          throw new EvalError("can only concatenate str (not \"" + Py.typeName(b) + "\") to str");
        }
      }
      case "*" -> {
        if (Py.numeric(b) instanceof Long n && (a instanceof String || a instanceof List)) {
          return repeat(a, n);
        }
        if (Py.numeric(a) instanceof Long n && (b instanceof String || b instanceof List)) {
          return repeat(b, n);
        }
      }
      case "%" -> {
        if (a instanceof String) {
          throw new EvalError("printf-style '%' string formatting is not available in chat templates");
        }
      }
      default -> {}
    }
    throw new EvalError("unsupported operand type(s) for " + op + ": '" + Py.typeName(a) + "' and '"
        + Py.typeName(b) + "'");
  }

  private static Object repeat(Object sequence, long times) {
    if (sequence instanceof String s) {
      return times <= 0 ? "" : s.repeat(Math.toIntExact(times));
    }
    List<?> list = (List<?>) sequence;
    List<Object> out = new ArrayList<>();
    for (long i = 0; i < times; i++) {
      out.addAll(list);
    }
    return sequence instanceof Py.Tuple ? new Py.Tuple(out) : out;
  }

  private static Object numeric(String op, Object a, Object b) {
    if (a instanceof Long x && b instanceof Long y) {
      try {
        return switch (op) {
          case "+" -> Math.addExact(x, y);
          case "-" -> Math.subtractExact(x, y);
          case "*" -> Math.multiplyExact(x, y);
          case "/" -> {
            if (y == 0) {
              throw new EvalError("division by zero");
            }
            yield (double) x / y;
          }
          case "//" -> {
            if (y == 0) {
              throw new EvalError("integer division or modulo by zero");
            }
            yield Math.floorDiv(x, y);
          }
          case "%" -> {
            if (y == 0) {
              throw new EvalError("integer division or modulo by zero");
            }
            yield Math.floorMod(x, y);
          }
          case "**" -> y >= 0 ? (Object) power(x, y) : (Object) Math.pow(x, y);
          default -> throw new EvalError("unknown operator " + op);
        };
      } catch (ArithmeticException e) {
        throw new EvalError("integer overflow in '" + op + "' (Python integers are unbounded, Selma's are 64-bit)");
      }
    }
    double x = Py.toDouble(a);
    double y = Py.toDouble(b);
    return switch (op) {
      case "+" -> x + y;
      case "-" -> x - y;
      case "*" -> x * y;
      case "/" -> {
        if (y == 0) {
          throw new EvalError("float division by zero");
        }
        yield x / y;
      }
      case "//" -> {
        if (y == 0) {
          throw new EvalError("float floor division by zero");
        }
        yield Math.floor(x / y);
      }
      case "%" -> {
        if (y == 0) {
          throw new EvalError("float modulo");
        }
        double r = x % y;
        yield r != 0 && (r < 0) != (y < 0) ? r + y : r;
      }
      case "**" -> Math.pow(x, y);
      default -> throw new EvalError("unknown operator " + op);
    };
  }

  private static long power(long base, long exponent) {
    long result = 1;
    long square = base;
    for (long e = exponent; e > 0; e >>= 1) {
      if ((e & 1) != 0) {
        result = Math.multiplyExact(result, square);
      }
      if (e > 1) {
        square = Math.multiplyExact(square, square);
      }
    }
    return result;
  }

  static boolean compare(String op, Object a, Object b) {
    return switch (op) {
      case "==" -> Py.eq(a, b);
      case "!=" -> !Py.eq(a, b);
      case "<" -> Py.compare(a, b) < 0;
      case "<=" -> Py.compare(a, b) <= 0;
      case ">" -> Py.compare(a, b) > 0;
      case ">=" -> Py.compare(a, b) >= 0;
      case "in" -> Py.contains(b, a);
      case "not in" -> !Py.contains(b, a);
      default -> throw new EvalError("unknown comparison " + op);
    };
  }
}
