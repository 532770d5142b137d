package dev.selma.engine.tokenizer.template;

import dev.selma.engine.tokenizer.template.Lexer.Kind;
import dev.selma.engine.tokenizer.template.Lexer.Token;
import dev.selma.engine.tokenizer.template.Node.*;
import java.util.ArrayList;
import java.util.List;

/**
 * Recursive-descent parser producing the syntax tree, with jinja2's grammar and operator precedence
 * (filters and tests bind tighter than arithmetic; {@code not} looser than comparisons). Unknown
 * tags, filters and tests are rejected here, before anything is rendered.
 */
final class Parser {
  private static final java.util.Set<String> UNSUPPORTED_TAGS =
      java.util.Set.of(
          "include", "import", "from", "extends", "block", "autoescape", "trans", "do");

  private final Source source;
  private final List<Token> tokens;
  private int index;
  private int loopDepth;

  private Parser(Source source, List<Token> tokens) {
    this.source = source;
    this.tokens = tokens;
  }

  static List<Stmt> parse(Source source) {
    Parser parser = new Parser(source, Lexer.tokenize(source));
    List<Stmt> body = parser.subparse(null, java.util.Set.of());
    parser.expect(Kind.EOF, "end of template");
    return body;
  }

  // ---- statements ----

  /**
   * Statements up to a block tag named in {@code endTags}; returns with that tag's name as the
   * current token. {@code opener} is the tag that needs closing, for the error at end of input.
   */
  private List<Stmt> subparse(Token opener, java.util.Set<String> endTags) {
    List<Stmt> body = new ArrayList<>();
    while (true) {
      Token t = peek();
      switch (t.kind()) {
        case DATA -> {
          next();
          body.add(new Text(t.text(), t.offset()));
        }
        case VAR_BEGIN -> {
          next();
          Expr value = parseTuple(true, false);
          expect(Kind.VAR_END, "end of print statement '}}'");
          body.add(new Print(value, t.offset()));
        }
        case BLOCK_BEGIN -> {
          next();
          Token name = peek();
          if (name.kind() == Kind.NAME && endTags.contains(name.text())) {
            return body;
          }
          body.add(parseStatement());
        }
        case EOF -> {
          if (opener != null) {
            throw source.error(
                "unexpected end of template: '{% "
                    + opener.text()
                    + " %}' is never closed (expected "
                    + describe(endTags)
                    + ")",
                opener.offset());
          }
          return body;
        }
        default -> throw unexpected(t, "text, '{{' or '{%'");
      }
    }
  }

  private static String describe(java.util.Set<String> tags) {
    return tags.stream().sorted().map(s -> "'{% " + s + " %}'").reduce((a, b) -> a + " or " + b).orElse("");
  }

  private Stmt parseStatement() {
    Token name = peek();
    if (name.kind() != Kind.NAME) {
      throw unexpected(name, "a tag name");
    }
    next();
    int at = name.offset();
    return switch (name.text()) {
          case "if" -> parseIf(name);
          case "for" -> parseFor(name);
          case "set" -> parseSet(name);
          case "macro" -> parseMacro(name);
          case "call" -> parseCallBlock(name);
          case "filter" -> parseFilterBlock(name);
          case "with" -> parseWith(name);
          case "generation" -> {
            expectBlockEnd();
            List<Stmt> body = closeBlock(name, "endgeneration");
            yield new Generation(body, at);
          }
          case "break", "continue" -> {
            if (loopDepth == 0) {
              throw source.error("'{% " + name.text() + " %}' outside of a for loop", at);
            }
            expectBlockEnd();
            yield name.text().equals("break") ? new Break(at) : new Continue(at);
          }
          default -> {
            String tag = name.text();
            if (tag.startsWith("end") || tag.equals("else") || tag.equals("elif")) {
              throw source.error("unexpected '{% " + tag + " %}': there is no open block it belongs to", at);
            }
            if (UNSUPPORTED_TAGS.contains(tag)) {
              throw source.error("the '" + tag + "' tag is not available in chat templates", at);
            }
            throw source.error("unknown tag '" + tag + "'", at);
          }
        };
  }

  /** Parses a body up to {@code {% endTag %}} and consumes that tag. */
  private List<Stmt> closeBlock(Token opener, String endTag) {
    List<Stmt> body = subparse(opener, java.util.Set.of(endTag));
    next();
    expectBlockEnd();
    return body;
  }

  private Stmt parseIf(Token opener) {
    List<Branch> branches = new ArrayList<>();
    Expr condition = parseTuple(false, false);
    expectBlockEnd();
    while (true) {
      List<Stmt> body = subparse(opener, java.util.Set.of("elif", "else", "endif"));
      branches.add(new Branch(condition, body));
      String tag = next().text();
      if (tag.equals("elif")) {
        condition = parseTuple(false, false);
        expectBlockEnd();
        continue;
      }
      expectBlockEnd();
      List<Stmt> otherwise = tag.equals("else") ? closeBlock(opener, "endif") : List.of();
      return new If(branches, otherwise, opener.offset());
    }
  }

  private Stmt parseFor(Token opener) {
    List<String> targets = parseTargets();
    expectName("in");
    Expr iterable = parseTuple(false, false);
    Expr filter = null;
    if (peek().isName("if")) {
      next();
      filter = parseTuple(true, false);
    }
    if (peek().isName("recursive")) {
      throw source.error("recursive for loops are not available in chat templates", peek().offset());
    }
    expectBlockEnd();
    loopDepth++;
    List<Stmt> body = subparse(opener, java.util.Set.of("else", "endfor"));
    loopDepth--;
    List<Stmt> otherwise = List.of();
    if (next().text().equals("else")) {
      expectBlockEnd();
      otherwise = closeBlock(opener, "endfor");
    } else {
      expectBlockEnd();
    }
    return new For(targets, iterable, filter, body, otherwise, opener.offset());
  }

  private List<String> parseTargets() {
    boolean parenthesized = peek().isOp("(");
    if (parenthesized) {
      next();
    }
    List<String> names = new ArrayList<>();
    do {
      names.add(expect(Kind.NAME, "a variable name").text());
    } while (skipOp(",") && peek().kind() == Kind.NAME);
    if (parenthesized) {
      expectOp(")");
    }
    return names;
  }

  private Stmt parseSet(Token opener) {
    Token first = expect(Kind.NAME, "a variable name after 'set'");
    if (skipOp(".")) {
      String attribute = expect(Kind.NAME, "an attribute name").text();
      expectOp("=");
      Expr value = parseTuple(true, false);
      expectBlockEnd();
      return new SetAttribute(new Name(first.text(), first.offset()), attribute, value, opener.offset());
    }
    List<String> targets = new ArrayList<>(List.of(first.text()));
    while (skipOp(",")) {
      targets.add(expect(Kind.NAME, "a variable name").text());
    }
    if (skipOp("=")) {
      Expr value = parseTuple(true, false);
      expectBlockEnd();
      return new Set(targets, value, opener.offset());
    }
    if (targets.size() > 1) {
      throw unexpected(peek(), "'='");
    }
    List<Filter> filters = new ArrayList<>();
    while (skipOp("|")) {
      filters.add(parseFilter(null));
    }
    expectBlockEnd();
    List<Stmt> body = closeBlock(opener, "endset");
    return new SetBlock(first.text(), filters, body, opener.offset());
  }

  private Stmt parseMacro(Token opener) {
    String name = expect(Kind.NAME, "a macro name").text();
    List<String> params = new ArrayList<>();
    List<Expr> defaults = new ArrayList<>();
    parseSignature(params, defaults);
    expectBlockEnd();
    int savedDepth = loopDepth;
    loopDepth = 0;
    List<Stmt> body = closeBlock(opener, "endmacro");
    loopDepth = savedDepth;
    return new MacroDef(name, params, defaults, body, opener.offset());
  }

  /** {@code (a, b=1)}; a parameter with a default may not be followed by one without. */
  private void parseSignature(List<String> params, List<Expr> defaults) {
    expectOp("(");
    while (!peek().isOp(")")) {
      if (!params.isEmpty()) {
        expectOp(",");
        if (peek().isOp(")")) {
          break;
        }
      }
      Token param = expect(Kind.NAME, "a parameter name");
      params.add(param.text());
      if (skipOp("=")) {
        defaults.add(parseExpression(true));
      } else if (!defaults.isEmpty()) {
        throw source.error("non-default parameter '" + param.text() + "' follows a default one", param.offset());
      }
    }
    next();
  }

  private Stmt parseCallBlock(Token opener) {
    List<String> params = new ArrayList<>();
    List<Expr> defaults = new ArrayList<>();
    if (peek().isOp("(")) {
      parseSignature(params, defaults);
    }
    Expr call = parseExpression(true);
    if (!(call instanceof Call c)) {
      throw source.error("'{% call %}' needs a macro call, as in '{% call m() %}'", call.offset());
    }
    expectBlockEnd();
    List<Stmt> body = closeBlock(opener, "endcall");
    return new CallBlock(c, params, defaults, body, opener.offset());
  }

  private Stmt parseFilterBlock(Token opener) {
    List<Filter> filters = new ArrayList<>();
    do {
      filters.add(parseFilter(null));
    } while (skipOp("|"));
    expectBlockEnd();
    List<Stmt> body = closeBlock(opener, "endfilter");
    return new FilterBlock(filters, body, opener.offset());
  }

  private Stmt parseWith(Token opener) {
    List<String> targets = new ArrayList<>();
    List<Expr> values = new ArrayList<>();
    while (!peek().is(Kind.BLOCK_END, "")) {
      if (!targets.isEmpty()) {
        expectOp(",");
      }
      targets.add(expect(Kind.NAME, "a variable name").text());
      expectOp("=");
      values.add(parseExpression(true));
    }
    expectBlockEnd();
    List<Stmt> body = closeBlock(opener, "endwith");
    return new With(targets, values, body, opener.offset());
  }

  // ---- expressions ----

  /** An expression, or a tuple when commas follow ({@code a, b}). */
  private Expr parseTuple(boolean withCondition, boolean parenthesized) {
    int at = peek().offset();
    List<Expr> items = new ArrayList<>();
    boolean comma = false;
    while (true) {
      if (!items.isEmpty()) {
        if (!skipOp(",")) {
          break;
        }
        comma = true;
      }
      if (endsTuple()) {
        break;
      }
      items.add(parseExpression(withCondition));
    }
    if (!comma && items.size() == 1) {
      return items.get(0);
    }
    if (items.isEmpty() && !parenthesized) {
      throw unexpected(peek(), "an expression");
    }
    return new TupleExpr(items, at);
  }

  private boolean endsTuple() {
    Token t = peek();
    return t.kind() == Kind.VAR_END || t.kind() == Kind.BLOCK_END || t.kind() == Kind.EOF
        || t.isOp(")");
  }

  private Expr parseExpression(boolean withCondition) {
    return withCondition ? parseConditional() : parseOr();
  }

  private Expr parseConditional() {
    Expr expr = parseOr();
    while (peek().isName("if")) {
      int at = next().offset();
      Expr condition = parseOr();
      Expr otherwise = null;
      if (peek().isName("else")) {
        next();
        otherwise = parseConditional();
      }
      expr = new Conditional(condition, expr, otherwise, at);
    }
    return expr;
  }

  private Expr parseOr() {
    Expr left = parseAnd();
    while (peek().isName("or")) {
      int at = next().offset();
      left = new Or(left, parseAnd(), at);
    }
    return left;
  }

  private Expr parseAnd() {
    Expr left = parseNot();
    while (peek().isName("and")) {
      int at = next().offset();
      left = new And(left, parseNot(), at);
    }
    return left;
  }

  private Expr parseNot() {
    if (peek().isName("not")) {
      int at = next().offset();
      return new Not(parseNot(), at);
    }
    return parseCompare();
  }

  private Expr parseCompare() {
    Expr first = parseMath1();
    List<String> ops = new ArrayList<>();
    List<Expr> rest = new ArrayList<>();
    while (true) {
      Token t = peek();
      if (t.kind() == Kind.OP && List.of("==", "!=", "<", ">", "<=", ">=").contains(t.text())) {
        next();
        ops.add(t.text());
      } else if (t.isName("in")) {
        next();
        ops.add("in");
      } else if (t.isName("not") && peekAt(1).isName("in")) {
        next();
        next();
        ops.add("not in");
      } else {
        break;
      }
      rest.add(parseMath1());
    }
    return ops.isEmpty() ? first : new Compare(first, ops, rest, first.offset());
  }

  private Expr parseMath1() {
    Expr left = parseConcat();
    while (peek().isOp("+") || peek().isOp("-")) {
      Token op = next();
      left = new Binary(op.text(), left, parseConcat(), op.offset());
    }
    return left;
  }

  private Expr parseConcat() {
    Expr left = parseMath2();
    while (peek().isOp("~")) {
      Token op = next();
      left = new Binary("~", left, parseMath2(), op.offset());
    }
    return left;
  }

  private Expr parseMath2() {
    Expr left = parsePow();
    while (peek().isOp("*") || peek().isOp("/") || peek().isOp("//") || peek().isOp("%")) {
      Token op = next();
      left = new Binary(op.text(), left, parsePow(), op.offset());
    }
    return left;
  }

  private Expr parsePow() {
    Expr left = parseUnary(true);
    while (peek().isOp("**")) {
      Token op = next();
      left = new Binary("**", left, parseUnary(true), op.offset());
    }
    return left;
  }

  private Expr parseUnary(boolean withFilters) {
    Token t = peek();
    Expr expr;
    if (t.isOp("-") || t.isOp("+")) {
      next();
      expr = new Unary(t.text(), parseUnary(false), t.offset());
    } else {
      expr = parsePrimary();
    }
    expr = parsePostfix(expr);
    return withFilters ? parseFilterExpr(expr) : expr;
  }

  private Expr parsePrimary() {
    Token t = next();
    return switch (t.kind()) {
      case NAME ->
          switch (t.text()) {
            case "true", "True" -> new Literal(true, t.offset());
            case "false", "False" -> new Literal(false, t.offset());
            case "none", "None" -> new Literal(null, t.offset());
            default -> new Name(t.text(), t.offset());
          };
      case STRING -> {
        StringBuilder text = new StringBuilder(t.text());
        while (peek().kind() == Kind.STRING) {
          text.append(next().text());
        }
        yield new Literal(text.toString(), t.offset());
      }
      case INTEGER -> {
        try {
          yield new Literal(Long.parseLong(t.text()), t.offset());
        } catch (NumberFormatException e) {
          throw source.error("integer literal too large: " + t.text(), t.offset());
        }
      }
      case FLOAT -> new Literal(Double.parseDouble(t.text()), t.offset());
      case OP ->
          switch (t.text()) {
            case "(" -> {
              Expr inner = parseTuple(true, true);
              expectOp(")");
              yield inner;
            }
            case "[" -> {
              List<Expr> items = new ArrayList<>();
              while (!peek().isOp("]")) {
                if (!items.isEmpty()) {
                  expectOp(",");
                  if (peek().isOp("]")) {
                    break;
                  }
                }
                items.add(parseExpression(true));
              }
              next();
              yield new ListExpr(items, t.offset());
            }
            case "{" -> {
              List<Expr> keys = new ArrayList<>();
              List<Expr> values = new ArrayList<>();
              while (!peek().isOp("}")) {
                if (!keys.isEmpty()) {
                  expectOp(",");
                  if (peek().isOp("}")) {
                    break;
                  }
                }
                keys.add(parseExpression(true));
                expectOp(":");
                values.add(parseExpression(true));
              }
              next();
              yield new DictExpr(keys, values, t.offset());
            }
            default -> throw unexpected(t, "an expression");
          };
      default -> throw unexpected(t, "an expression");
    };
  }

  private Expr parsePostfix(Expr expr) {
    while (true) {
      Token t = peek();
      if (t.isOp(".")) {
        next();
        Token attr = next();
        if (attr.kind() == Kind.NAME) {
          expr = new GetAttr(expr, attr.text(), attr.offset());
        } else if (attr.kind() == Kind.INTEGER) {
          expr = new GetItem(expr, new Literal(Long.parseLong(attr.text()), attr.offset()), attr.offset());
        } else {
          throw unexpected(attr, "an attribute name after '.'");
        }
      } else if (t.isOp("[")) {
        next();
        expr = new GetItem(expr, parseSubscript(), t.offset());
        expectOp("]");
      } else if (t.isOp("(")) {
        expr = parseCall(expr);
      } else {
        return expr;
      }
    }
  }

  private Expr parseSubscript() {
    int at = peek().offset();
    Expr start = peek().isOp(":") ? null : parseExpression(true);
    if (!peek().isOp(":")) {
      return start;
    }
    next();
    Expr stop = peek().isOp("]") || peek().isOp(":") ? null : parseExpression(true);
    Expr step = null;
    if (skipOp(":") && !peek().isOp("]")) {
      step = parseExpression(true);
    }
    return new Slice(start, stop, step, at);
  }

  private Call parseCall(Expr callee) {
    expectOp("(");
    List<Expr> args = new ArrayList<>();
    List<String> names = new ArrayList<>();
    List<Expr> values = new ArrayList<>();
    parseArguments(args, names, values);
    // Errors of a call are reported where the callee is named.
    return new Call(callee, args, names, values, callee.offset());
  }

  /** Arguments after '(' up to and including ')'. */
  private void parseArguments(List<Expr> args, List<String> names, List<Expr> values) {
    boolean first = true;
    while (!peek().isOp(")")) {
      if (!first) {
        expectOp(",");
        if (peek().isOp(")")) {
          break;
        }
      }
      first = false;
      Token t = peek();
      if (t.isOp("*") || t.isOp("**")) {
        throw source.error("'*' and '**' arguments are not available in chat templates", t.offset());
      }
      if (t.kind() == Kind.NAME && peekAt(1).isOp("=")) {
        next();
        next();
        names.add(t.text());
        values.add(parseExpression(true));
      } else {
        if (!names.isEmpty()) {
          throw source.error("positional argument follows keyword argument", t.offset());
        }
        args.add(parseExpression(true));
      }
    }
    next();
  }

  private Expr parseFilterExpr(Expr expr) {
    while (true) {
      Token t = peek();
      if (t.isOp("|")) {
        next();
        expr = parseFilter(expr);
      } else if (t.isName("is")) {
        next();
        expr = parseTest(expr, t);
      } else if (t.isOp("(")) {
        expr = parseCall(expr);
      } else {
        return expr;
      }
    }
  }

  private Filter parseFilter(Expr target) {
    Token name = expect(Kind.NAME, "a filter name");
    if (!Filters.exists(name.text())) {
      throw source.error("unknown filter '" + name.text() + "'", name.offset());
    }
    List<Expr> args = new ArrayList<>();
    List<String> names = new ArrayList<>();
    List<Expr> values = new ArrayList<>();
    if (skipOp("(")) {
      parseArguments(args, names, values);
    }
    return new Filter(target, name.text(), args, names, values, name.offset());
  }

  private Expr parseTest(Expr target, Token is) {
    boolean negated = false;
    if (peek().isName("not")) {
      next();
      negated = true;
    }
    Token name = expect(Kind.NAME, "a test name after 'is'");
    if (!Tests.exists(name.text())) {
      throw source.error("unknown test '" + name.text() + "'", name.offset());
    }
    List<Expr> args = new ArrayList<>();
    Token t = peek();
    if (t.isOp("(")) {
      next();
      List<String> names = new ArrayList<>();
      List<Expr> values = new ArrayList<>();
      parseArguments(args, names, values);
      if (!names.isEmpty()) {
        throw source.error("tests take no keyword arguments", name.offset());
      }
    } else if ((t.kind() == Kind.NAME || t.kind() == Kind.STRING || t.kind() == Kind.INTEGER
            || t.kind() == Kind.FLOAT || t.isOp("(") || t.isOp("[") || t.isOp("{"))
        && !(t.isName("else") || t.isName("or") || t.isName("and"))) {
      if (t.isName("is")) {
        throw source.error("tests cannot be chained with 'is'", t.offset());
      }
      args.add(parsePostfix(parsePrimary()));
    }
    return new Test(target, name.text(), args, negated, is.offset());
  }

  // ---- token helpers ----

  private Token peek() {
    return tokens.get(index);
  }

  private Token peekAt(int ahead) {
    return tokens.get(Math.min(index + ahead, tokens.size() - 1));
  }

  private Token next() {
    Token t = tokens.get(index);
    if (t.kind() != Kind.EOF) {
      index++;
    }
    return t;
  }

  private boolean skipOp(String op) {
    if (peek().isOp(op)) {
      next();
      return true;
    }
    return false;
  }

  private Token expect(Kind kind, String what) {
    Token t = peek();
    if (t.kind() != kind) {
      throw unexpected(t, what);
    }
    return next();
  }

  private Token expectOp(String op) {
    if (!peek().isOp(op)) {
      throw unexpected(peek(), "'" + op + "'");
    }
    return next();
  }

  private void expectName(String name) {
    if (!peek().isName(name)) {
      throw unexpected(peek(), "'" + name + "'");
    }
    next();
  }

  private void expectBlockEnd() {
    expect(Kind.BLOCK_END, "end of tag '%}'");
  }

  private TemplateException unexpected(Token t, String expected) {
    String found =
        switch (t.kind()) {
          case EOF -> "end of template";
          case DATA -> "text";
          case VAR_END -> "'}}'";
          case BLOCK_END -> "'%}'";
          case VAR_BEGIN -> "'{{'";
          case BLOCK_BEGIN -> "'{%'";
          case STRING -> "string " + Py.repr(t.text());
          default -> "'" + t.text() + "'";
        };
    return source.error("unexpected " + found + ", expected " + expected, t.offset());
  }
}
