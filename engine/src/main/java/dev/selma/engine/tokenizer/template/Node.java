package dev.selma.engine.tokenizer.template;

import java.util.List;

/** The template syntax tree. Every node keeps the source offset it came from, for error messages. */
sealed interface Node {
  int offset();

  // ---- statements ----

  sealed interface Stmt extends Node {}

  record Text(String text, int offset) implements Stmt {}

  record Print(Expr value, int offset) implements Stmt {}

  record If(List<Branch> branches, List<Stmt> otherwise, int offset) implements Stmt {}

  record Branch(Expr condition, List<Stmt> body) {}

  /** {@code for targets in iterable [if filter] ... [else ...] endfor}. */
  record For(
      List<String> targets,
      Expr iterable,
      Expr filter,
      List<Stmt> body,
      List<Stmt> otherwise,
      int offset)
      implements Stmt {}

  record Set(List<String> targets, Expr value, int offset) implements Stmt {}

  /** {@code set ns.attribute = value}, allowed on namespaces only. */
  record SetAttribute(Expr owner, String attribute, Expr value, int offset) implements Stmt {}

  /** {@code set name | filters %}...{% endset}: the rendered body, filtered, becomes the value. */
  record SetBlock(String target, List<Filter> filters, List<Stmt> body, int offset) implements Stmt {}

  record MacroDef(String name, List<String> params, List<Expr> defaults, List<Stmt> body, int offset)
      implements Stmt {}

  /** {@code call(params) macro(args) %}body{% endcall}: the body becomes the macro's caller(). */
  record CallBlock(Call call, List<String> callerParams, List<Expr> callerDefaults, List<Stmt> body, int offset)
      implements Stmt {}

  record FilterBlock(List<Filter> filters, List<Stmt> body, int offset) implements Stmt {}

  record With(List<String> targets, List<Expr> values, List<Stmt> body, int offset) implements Stmt {}

  /** transformers' {@code generation} tag marks assistant text; rendering is unaffected. */
  record Generation(List<Stmt> body, int offset) implements Stmt {}

  record Break(int offset) implements Stmt {}

  record Continue(int offset) implements Stmt {}

  // ---- expressions ----

  sealed interface Expr extends Node {}

  record Literal(Object value, int offset) implements Expr {}

  record Name(String name, int offset) implements Expr {}

  record ListExpr(List<Expr> items, int offset) implements Expr {}

  record TupleExpr(List<Expr> items, int offset) implements Expr {}

  record DictExpr(List<Expr> keys, List<Expr> values, int offset) implements Expr {}

  record GetAttr(Expr owner, String name, int offset) implements Expr {}

  record GetItem(Expr owner, Expr key, int offset) implements Expr {}

  /** {@code [start:stop:step]}; absent parts are null. */
  record Slice(Expr start, Expr stop, Expr step, int offset) implements Expr {}

  record Call(Expr callee, List<Expr> args, List<String> kwargNames, List<Expr> kwargValues, int offset)
      implements Expr {}

  record Filter(Expr target, String name, List<Expr> args, List<String> kwargNames, List<Expr> kwargValues, int offset)
      implements Expr {}

  record Test(Expr target, String name, List<Expr> args, boolean negated, int offset) implements Expr {}

  record Unary(String op, Expr operand, int offset) implements Expr {}

  record Binary(String op, Expr left, Expr right, int offset) implements Expr {}

  /** A comparison chain {@code a < b <= c}, evaluated as Python does. */
  record Compare(Expr first, List<String> ops, List<Expr> rest, int offset) implements Expr {}

  record And(Expr left, Expr right, int offset) implements Expr {}

  record Or(Expr left, Expr right, int offset) implements Expr {}

  record Not(Expr operand, int offset) implements Expr {}

  /** {@code then if condition else otherwise}; a missing else yields undefined. */
  record Conditional(Expr condition, Expr then, Expr otherwise, int offset) implements Expr {}
}
