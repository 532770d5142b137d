package dev.selma.engine.tokenizer.template;

/**
 * jinja2's default {@code Undefined}: what a missing variable, a missing key or attribute, or an
 * index out of range evaluates to. It is falsy, prints as nothing, iterates as empty and has length
 * 0, but any other use (arithmetic, ordering, attribute or item access, calling) fails with the
 * message jinja2 would give.
 */
final class Undefined {
  private final String message;

  private Undefined(String message) {
    this.message = message;
  }

  static Undefined named(String name) {
    return new Undefined("'" + name + "' is undefined");
  }

  static Undefined attribute(Object owner, Object name) {
    // jinja2 quotes the owner for a missing attribute but not for a missing element.
    return name instanceof String s
        ? new Undefined(Py.repr(ownerDescription(owner)) + " has no attribute " + Py.repr(s))
        : new Undefined(ownerDescription(owner) + " has no element " + Py.repr(name));
  }

  /** jinja2's sandbox hides methods that would mutate a value passed in by the caller. */
  static Undefined unsafe(Object owner, String name) {
    return new Undefined(
        "access to attribute '" + name + "' of '" + Py.typeName(owner) + "' object is unsafe.");
  }

  static Undefined withMessage(String message) {
    return new Undefined(message);
  }

  EvalError error() {
    return new EvalError(message);
  }

  private static String ownerDescription(Object owner) {
    return owner == null ? "None" : Py.typeName(owner) + " object";
  }
}
