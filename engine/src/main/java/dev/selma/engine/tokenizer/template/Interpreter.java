package dev.selma.engine.tokenizer.template;

import dev.selma.engine.tokenizer.template.Node.*;
import java.time.Clock;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Renders a parsed template. Scoping follows jinja2: {@code set} inside a loop body stays in that
 * iteration (each iteration starts afresh from the enclosing scope), {@code if} opens no scope,
 * macros see the scope they were defined in; {@code namespace()} objects carry state across.
 */
final class Interpreter {
  private enum Flow {
    NORMAL,
    BREAK,
    CONTINUE
  }

  private static final class Scope {
    private final Map<String, Object> vars = new HashMap<>();
    private final Scope parent;

    Scope(Scope parent) {
      this.parent = parent;
    }

    Object lookup(String name) {
      for (Scope s = this; s != null; s = s.parent) {
        if (s.vars.containsKey(name)) {
          return s.vars.get(name);
        }
      }
      return Undefined.named(name);
    }

    void set(String name, Object value) {
      vars.put(name, value);
    }
  }

  private static final long MAX_RANGE = 100_000;

  private final Source source;
  private final Clock clock;

  Interpreter(Source source, Clock clock) {
    this.source = source;
    this.clock = clock;
  }

  String render(List<Stmt> body, Map<String, Object> variables) {
    Scope globals = new Scope(null);
    globals.set("raise_exception", (Callable) this::raiseException);
    globals.set("strftime_now", (Callable) this::strftimeNow);
    globals.set("namespace", (Callable) Interpreter::namespace);
    globals.set("range", (Callable) Interpreter::range);
    globals.set("dict", (Callable) (args, kwargs) -> {
      Args.bind("dict", args, Map.of());
      return new LinkedHashMap<Object, Object>(kwargs);
    });
    Scope context = new Scope(globals);
    variables.forEach((name, value) -> context.set(name, Py.fromJava(value)));
    StringBuilder out = new StringBuilder();
    execute(body, new Scope(context), out);
    return out.toString();
  }

  // ---- globals ----

  private Object raiseException(List<Object> args, Map<String, Object> kwargs) {
    Object message = Args.bind("raise_exception", args, kwargs, "message", Args.REQUIRED)[0];
    throw new EvalError(Py.str(message), true);
  }

  private Object strftimeNow(List<Object> args, Map<String, Object> kwargs) {
    Object format = Args.bind("strftime_now", args, kwargs, "format", Args.REQUIRED)[0];
    return Strftime.format(Args.string("strftime_now", format), LocalDateTime.now(clock));
  }

  private static Object namespace(List<Object> args, Map<String, Object> kwargs) {
    Namespace ns = new Namespace();
    for (Object arg : args) {
      if (!(arg instanceof Map<?, ?> initial)) {
        throw new EvalError("namespace() takes keyword arguments or a dict");
      }
      ns.attributes().putAll(initial);
    }
    ns.attributes().putAll(kwargs);
    return ns;
  }

  private static Object range(List<Object> args, Map<String, Object> kwargs) {
    Args.bind("range", List.of(), kwargs);
    if (args.isEmpty() || args.size() > 3) {
      throw new EvalError("range() takes 1 to 3 arguments, " + args.size() + " given");
    }
    long start = args.size() == 1 ? 0 : Args.integer("range", args.get(0));
    long stop = Args.integer("range", args.get(args.size() == 1 ? 0 : 1));
    long step = args.size() == 3 ? Args.integer("range", args.get(2)) : 1;
    if (step == 0) {
      throw new EvalError("range() arg 3 must not be zero");
    }
    List<Object> out = new ArrayList<>();
    for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= MAX_RANGE) {
        throw new EvalError("range too big, the sandbox allows at most " + MAX_RANGE + " items");
      }
      out.add(i);
    }
    return out;
  }

  // ---- statements ----

  private Flow execute(List<Stmt> body, Scope scope, StringBuilder out) {
    for (Stmt stmt : body) {
      Flow flow = execute(stmt, scope, out);
      if (flow != Flow.NORMAL) {
        return flow;
      }
    }
    return Flow.NORMAL;
  }

  private Flow execute(Stmt stmt, Scope scope, StringBuilder out) {
    try {
      return switch (stmt) {
        case Text t -> {
          out.append(t.text());
          yield Flow.NORMAL;
        }
        case Print p -> {
          out.append(Py.str(eval(p.value(), scope)));
          yield Flow.NORMAL;
        }
        case If i -> {
          for (Branch branch : i.branches()) {
            if (Py.truthy(eval(branch.condition(), scope))) {
              yield execute(branch.body(), scope, out);
            }
          }
          yield execute(i.otherwise(), scope, out);
        }
        case For f -> loop(f, scope, out);
        case Set s -> {
          assign(s.targets(), eval(s.value(), scope), scope);
          yield Flow.NORMAL;
        }
        case SetAttribute s -> {
          Object owner = eval(s.owner(), scope);
          if (!(owner instanceof Namespace ns)) {
            throw new EvalError("cannot assign attribute on non-namespace object");
          }
          ns.attributes().put(s.attribute(), eval(s.value(), scope));
          yield Flow.NORMAL;
        }
        case SetBlock s -> {
          StringBuilder captured = new StringBuilder();
          execute(s.body(), scope, captured);
          scope.set(s.target(), applyFilters(s.filters(), captured.toString(), scope));
          yield Flow.NORMAL;
        }
        case MacroDef m -> {
          scope.set(m.name(), new Macro(m.name(), m.params(), m.defaults(), m.body(), scope));
          yield Flow.NORMAL;
        }
        case CallBlock c -> {
          Macro caller = new Macro("caller", c.callerParams(), c.callerDefaults(), c.body(), scope);
          Object callee = eval(c.call().callee(), scope);
          if (!(callee instanceof Macro macro)) {
            throw new EvalError("'{% call %}' needs a macro, got '" + Py.typeName(callee) + "'");
          }
          Map<String, Object> kwargs = keywordArguments(c.call(), scope);
          kwargs.put("caller", caller);
          out.append(Py.str(macro.call(arguments(c.call().args(), scope), kwargs)));
          yield Flow.NORMAL;
        }
        case FilterBlock f -> {
          StringBuilder captured = new StringBuilder();
          execute(f.body(), scope, captured);
          out.append(Py.str(applyFilters(f.filters(), captured.toString(), scope)));
          yield Flow.NORMAL;
        }
        case With w -> {
          Scope inner = new Scope(scope);
          for (int i = 0; i < w.targets().size(); i++) {
            inner.set(w.targets().get(i), eval(w.values().get(i), scope));
          }
          yield execute(w.body(), inner, out);
        }
        case Generation g -> execute(g.body(), scope, out);
        case Break b -> Flow.BREAK;
        case Continue c -> Flow.CONTINUE;
      };
    } catch (EvalError e) {
      throw located(e, stmt.offset());
    }
  }

  private Flow loop(For f, Scope scope, StringBuilder out) {
    List<Object> items = Py.iterate(eval(f.iterable(), scope));
    if (f.filter() != null) {
      List<Object> kept = new ArrayList<>();
      for (Object item : items) {
        Scope probe = new Scope(scope);
        assign(f.targets(), item, probe);
        if (Py.truthy(eval(f.filter(), probe))) {
          kept.add(item);
        }
      }
      items = kept;
    }
    if (items.isEmpty()) {
      return execute(f.otherwise(), scope, out);
    }
    LoopContext loop = new LoopContext(items);
    for (int i = 0; i < items.size(); i++) {
      Scope iteration = new Scope(scope);
      loop.advance(i);
      iteration.set("loop", loop);
      assign(f.targets(), items.get(i), iteration);
      if (execute(f.body(), iteration, out) == Flow.BREAK) {
        break;
      }
    }
    return Flow.NORMAL;
  }

  private static void assign(List<String> targets, Object value, Scope scope) {
    if (targets.size() == 1) {
      scope.set(targets.get(0), value);
      return;
    }
    List<Object> values = Py.iterate(value);
    if (values.size() != targets.size()) {
      throw new EvalError(values.size() < targets.size()
          ? "not enough values to unpack (expected " + targets.size() + ", got " + values.size() + ")"
          : "too many values to unpack (expected " + targets.size() + ")");
    }
    for (int i = 0; i < targets.size(); i++) {
      scope.set(targets.get(i), values.get(i));
    }
  }

  private Object applyFilters(List<Filter> filters, Object value, Scope scope) {
    for (Filter f : filters) {
      value = Filters.apply(f.name(), value, arguments(f.args(), scope), keywords(f.kwargNames(), f.kwargValues(), scope));
    }
    return value;
  }

  /** A macro: renders its body in a scope below the one it was defined in. */
  private final class Macro implements Callable {
    private final String name;
    private final List<String> params;
    private final List<Expr> defaults;
    private final List<Stmt> body;
    private final Scope closure;

    Macro(String name, List<String> params, List<Expr> defaults, List<Stmt> body, Scope closure) {
      this.name = name;
      this.params = params;
      this.defaults = defaults;
      this.body = body;
      this.closure = closure;
    }

    @Override
    public Object call(List<Object> args, Map<String, Object> kwargs) {
      if (args.size() > params.size()) {
        throw new EvalError("macro '" + name + "' takes not more than " + params.size() + " argument(s)");
      }
      Scope frame = new Scope(closure);
      for (int i = 0; i < args.size(); i++) {
        frame.set(params.get(i), args.get(i));
      }
      for (Map.Entry<String, Object> kw : kwargs.entrySet()) {
        int at = params.indexOf(kw.getKey());
        if (at < 0 && !kw.getKey().equals("caller")) {
          throw new EvalError("macro '" + name + "' takes no keyword argument '" + kw.getKey() + "'");
        }
        if (at >= 0 && at < args.size()) {
          throw new EvalError("macro '" + name + "' got multiple values for argument '" + kw.getKey() + "'");
        }
        frame.set(kw.getKey(), kw.getValue());
      }
      int firstDefault = params.size() - defaults.size();
      for (int i = args.size(); i < params.size(); i++) {
        String param = params.get(i);
        if (!frame.vars.containsKey(param)) {
          frame.set(param, i >= firstDefault ? eval(defaults.get(i - firstDefault), frame) : Undefined.named(param));
        }
      }
      StringBuilder out = new StringBuilder();
      execute(body, frame, out);
      return out.toString();
    }

    @Override
    public String kind() {
      return "Macro";
    }
  }

  // ---- expressions ----

  private Object eval(Expr expr, Scope scope) {
    try {
      return evaluate(expr, scope);
    } catch (EvalError e) {
      throw located(e, expr.offset());
    }
  }

  private Object evaluate(Expr expr, Scope scope) {
    return switch (expr) {
      case Literal l -> l.value();
      case Name n -> scope.lookup(n.name());
      case ListExpr l -> arguments(l.items(), scope);
      case TupleExpr t -> new Py.Tuple(arguments(t.items(), scope));
      case DictExpr d -> {
        Map<Object, Object> map = new LinkedHashMap<>();
        for (int i = 0; i < d.keys().size(); i++) {
          Object key = eval(d.keys().get(i), scope);
          Object existing = Py.findKey(map, key);
          map.put(existing == Py.MISSING ? key : existing, eval(d.values().get(i), scope));
        }
        yield map;
      }
      case GetAttr g -> Access.attribute(eval(g.owner(), scope), g.name());
      case GetItem g -> {
        Object owner = eval(g.owner(), scope);
        if (g.key() instanceof Slice s) {
          yield Access.slice(owner, optional(s.start(), scope), optional(s.stop(), scope), optional(s.step(), scope));
        }
        yield Access.item(owner, eval(g.key(), scope));
      }
      case Slice s -> throw new EvalError("a slice is only allowed inside '[...]'");
      case Call c -> {
        Object callee = eval(c.callee(), scope);
        List<Object> args = arguments(c.args(), scope);
        Map<String, Object> kwargs = keywordArguments(c, scope);
        yield switch (callee) {
          case Undefined u -> throw u.error();
          case Callable f -> f.call(args, kwargs);
          default -> throw new EvalError("'" + Py.typeName(callee) + "' object is not callable");
        };
      }
      case Filter f ->
          Filters.apply(f.name(), eval(f.target(), scope), arguments(f.args(), scope),
              keywords(f.kwargNames(), f.kwargValues(), scope));
      case Test t -> Tests.apply(t.name(), eval(t.target(), scope), arguments(t.args(), scope)) != t.negated();
      case Unary u -> Arithmetic.unary(u.op(), eval(u.operand(), scope));
      case Binary b -> Arithmetic.binary(b.op(), eval(b.left(), scope), eval(b.right(), scope));
      case Compare c -> {
        Object left = eval(c.first(), scope);
        for (int i = 0; i < c.ops().size(); i++) {
          Object right = eval(c.rest().get(i), scope);
          if (!Arithmetic.compare(c.ops().get(i), left, right)) {
            yield false;
          }
          left = right;
        }
        yield true;
      }
      case And a -> {
        Object left = eval(a.left(), scope);
        yield Py.truthy(left) ? eval(a.right(), scope) : left;
      }
      case Or o -> {
        Object left = eval(o.left(), scope);
        yield Py.truthy(left) ? left : eval(o.right(), scope);
      }
      case Not n -> !Py.truthy(eval(n.operand(), scope));
      case Conditional c -> {
        if (Py.truthy(eval(c.condition(), scope))) {
          yield eval(c.then(), scope);
        }
        yield c.otherwise() != null
            ? eval(c.otherwise(), scope)
            : Undefined.withMessage("the inline if-expression on line " + source.line(c.offset())
                + " evaluated to false and no else section was defined.");
      }
    };
  }

  private Object optional(Expr expr, Scope scope) {
    return expr == null ? null : eval(expr, scope);
  }

  private List<Object> arguments(List<Expr> exprs, Scope scope) {
    List<Object> values = new ArrayList<>(exprs.size());
    for (Expr e : exprs) {
      values.add(eval(e, scope));
    }
    return values;
  }

  private Map<String, Object> keywordArguments(Call call, Scope scope) {
    return keywords(call.kwargNames(), call.kwargValues(), scope);
  }

  private Map<String, Object> keywords(List<String> names, List<Expr> values, Scope scope) {
    Map<String, Object> kwargs = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      kwargs.put(names.get(i), eval(values.get(i), scope));
    }
    return kwargs;
  }

  private TemplateException located(EvalError e, int offset) {
    int line = source.line(offset);
    int column = source.column(offset);
    return e.raisedByTemplate
        ? new TemplateRaisedException(e.getMessage(), line, column)
        : new TemplateException(e.getMessage(), line, column);
  }
}
