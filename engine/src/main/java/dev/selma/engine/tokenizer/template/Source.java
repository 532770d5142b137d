package dev.selma.engine.tokenizer.template;

import java.util.Arrays;

/**
 * Template text after jinja2's newline handling, with offset-to-line/column mapping for error
 * messages.
 */
final class Source {
  final String text;
  private final int[] lineStarts;

  private Source(String text) {
    this.text = text;
    int[] starts = new int[16];
    int count = 1;
    for (int i = 0; i < text.length(); i++) {
      if (text.charAt(i) == '\n') {
        if (count == starts.length) {
          starts = Arrays.copyOf(starts, count * 2);
        }
        starts[count++] = i + 1;
      }
    }
    this.lineStarts = Arrays.copyOf(starts, count);
  }

  /**
   * jinja2 turns every {@code \r\n} and {@code \r} into {@code \n} and, because transformers keeps
   * {@code keep_trailing_newline=False}, drops one newline at the very end of the template.
   */
  static Source of(String raw) {
    String text = raw.replace("\r\n", "\n").replace('\r', '\n');
    if (text.endsWith("\n")) {
      text = text.substring(0, text.length() - 1);
    }
    return new Source(text);
  }

  int line(int offset) {
    int index = Arrays.binarySearch(lineStarts, offset);
    return (index >= 0 ? index : -index - 2) + 1;
  }

  int column(int offset) {
    return offset - lineStarts[line(offset) - 1] + 1;
  }

  TemplateException error(String detail, int offset) {
    return new TemplateException(detail, line(offset), column(offset));
  }
}
