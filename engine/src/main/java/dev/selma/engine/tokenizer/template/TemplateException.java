package dev.selma.engine.tokenizer.template;

/**
 * A chat template that cannot be parsed or rendered. The message says what is wrong and, when the
 * problem has a place in the template source, where ({@link #line()} and {@link #column()}, both
 * 1-based; 0 when there is no place).
 */
public class TemplateException extends RuntimeException {
  private final String detail;
  private final int line;
  private final int column;

  TemplateException(String detail, int line, int column) {
    super(line > 0 ? detail + " (line " + line + ", column " + column + ")" : detail);
    this.detail = detail;
    this.line = line;
    this.column = column;
  }

  /** The problem alone, without the position. */
  public String detail() {
    return detail;
  }

  public int line() {
    return line;
  }

  public int column() {
    return column;
  }
}
