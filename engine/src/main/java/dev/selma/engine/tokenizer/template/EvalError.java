package dev.selma.engine.tokenizer.template;

/**
 * A render-time error raised deep inside value operations, where the template position is not
 * known; the interpreter turns it into a {@link TemplateException} at the innermost expression or
 * statement that has a position.
 */
final class EvalError extends RuntimeException {
  final boolean raisedByTemplate;

  EvalError(String message) {
    this(message, false);
  }

  EvalError(String message, boolean raisedByTemplate) {
    super(message, null, false, false);
    this.raisedByTemplate = raisedByTemplate;
  }
}
