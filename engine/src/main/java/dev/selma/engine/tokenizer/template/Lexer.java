package dev.selma.engine.tokenizer.template;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Splits a template into text and tag tokens the way jinja2's lexer does with transformers'
 * settings ({@code trim_blocks=True}, {@code lstrip_blocks=True}): whitespace control with {@code -}
 * and {@code +}, the newline after a block or comment tag dropped, indentation before a block or
 * comment tag that starts a line dropped, comments and {@code raw} blocks resolved here.
 */
final class Lexer {
  enum Kind {
    DATA,
    VAR_BEGIN,
    VAR_END,
    BLOCK_BEGIN,
    BLOCK_END,
    NAME,
    STRING,
    INTEGER,
    FLOAT,
    OP,
    EOF
  }

  /** A token; {@code text} is the decoded value for strings and the digits for numbers. */
  record Token(Kind kind, String text, int offset) {
    boolean is(Kind k, String t) {
      return kind == k && text.equals(t);
    }

    boolean isOp(String op) {
      return is(Kind.OP, op);
    }

    boolean isName(String name) {
      return is(Kind.NAME, name);
    }
  }

  // Longest first, so that "//" wins over "/" and "==" over "=".
  private static final String[] OPERATORS = {
    "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
    ">", "<", "=", ".", ":", "|", ",", ";"
  };

  private final Source source;
  private final String text;
  private final List<Token> tokens = new ArrayList<>();
  private int pos;
  // jinja2 applies lstrip_blocks to text without a newline only when that text starts a line.
  private boolean lineStarting = true;

  private Lexer(Source source) {
    this.source = source;
    this.text = source.text;
  }

  static List<Token> tokenize(Source source) {
    Lexer lexer = new Lexer(source);
    lexer.run();
    return lexer.tokens;
  }

  private void run() {
    while (pos < text.length()) {
      int tag = nextTagStart(pos);
      if (tag < 0) {
        tokens.add(new Token(Kind.DATA, text.substring(pos), pos));
        pos = text.length();
        break;
      }
      char type = text.charAt(tag + 1);
      int afterOpen = tag + 2;
      char sign = afterOpen < text.length() ? text.charAt(afterOpen) : 0;
      boolean hasSign = sign == '-' || sign == '+';
      String data = text.substring(pos, tag);
      if (sign == '-') {
        data = Py.rstrip(data);
      } else if (sign != '+' && type != '{') {
        data = lstripBlock(data);
      }
      if (!data.isEmpty()) {
        tokens.add(new Token(Kind.DATA, data, pos));
      }
      pos = afterOpen + (hasSign ? 1 : 0);
      switch (type) {
        case '#' -> comment(tag);
        case '%' -> {
          if (!raw(tag)) {
            tag(tag, Kind.BLOCK_BEGIN, Kind.BLOCK_END, '%');
          }
        }
        default -> tag(tag, Kind.VAR_BEGIN, Kind.VAR_END, '}');
      }
    }
    tokens.add(new Token(Kind.EOF, "", text.length()));
  }

  private int nextTagStart(int from) {
    int i = text.indexOf('{', from);
    while (i >= 0 && i + 1 < text.length()) {
      char c = text.charAt(i + 1);
      if (c == '{' || c == '%' || c == '#') {
        return i;
      }
      i = text.indexOf('{', i + 1);
    }
    return -1;
  }

  /** lstrip_blocks: drop the whitespace between the start of a line and a block or comment tag. */
  private String lstripBlock(String data) {
    int lineStart = data.lastIndexOf('\n') + 1;
    if ((lineStart > 0 || lineStarting) && lineStart < data.length()) {
      for (int i = lineStart; i < data.length(); i++) {
        if (!Py.isSpace(data.charAt(i))) {
          return data;
        }
      }
      return data.substring(0, lineStart);
    }
    return data;
  }

  private void comment(int open) {
    int end = text.indexOf("#}", pos);
    if (end < 0) {
      throw source.error("missing end of comment tag '#}' for the comment opened here", open);
    }
    char sign = end > pos ? text.charAt(end - 1) : 0;
    pos = end + 2;
    afterTagEnd(sign);
  }

  /** What follows a tag end: {@code -} eats all whitespace, otherwise trim_blocks eats a newline. */
  private void afterTagEnd(char sign) {
    int start = pos;
    if (sign == '-') {
      while (pos < text.length() && Py.isSpace(text.charAt(pos))) {
        pos++;
      }
    } else if (sign != '+' && pos < text.length() && text.charAt(pos) == '\n') {
      pos++;
    }
    lineStarting = pos > start && text.charAt(pos - 1) == '\n';
  }

  /**
   * Consumes a tag end at {@code pos} if there is one: {@code -%}}, {@code +%}} or {@code %}} for
   * blocks, {@code -}}}} or {@code }}}} for expressions (which trim_blocks does not touch).
   */
  private boolean tagEnd(Kind end, char closer) {
    String marker = closer + "}";
    char sign = text.charAt(pos);
    boolean signed = (sign == '-' || (sign == '+' && closer == '%')) && text.startsWith(marker, pos + 1);
    if (!signed && !text.startsWith(marker, pos)) {
      return false;
    }
    tokens.add(new Token(end, "", pos));
    pos += signed ? 3 : 2;
    if (closer == '%' || (signed && sign == '-')) {
      afterTagEnd(signed ? sign : 0);
    } else {
      lineStarting = false;
    }
    return true;
  }

  /** {@code {% raw %}...{% endraw %}} becomes one text token. Returns false if this is no raw tag. */
  private boolean raw(int open) {
    int i = skipSpace(pos);
    if (!text.startsWith("raw", i) || (i + 3 < text.length() && isNameChar(text.charAt(i + 3)))) {
      return false;
    }
    i = skipSpace(i + 3);
    boolean strip = text.startsWith("-%}", i);
    if (!strip && !text.startsWith("%}", i)) {
      return false;
    }
    i += strip ? 3 : 2;
    if (strip) {
      i = skipSpace(i);
    }
    int search = i;
    while (true) {
      int end = text.indexOf("{%", search);
      if (end < 0) {
        throw source.error("missing '{% endraw %}' for the raw block opened here", open);
      }
      int j = end + 2;
      char sign = j < text.length() ? text.charAt(j) : 0;
      if (sign == '-' || sign == '+') {
        j++;
      }
      j = skipSpace(j);
      if (text.startsWith("endraw", j)) {
        j = skipSpace(j + 6);
        char endSign = text.charAt(j) == '-' || text.charAt(j) == '+' ? text.charAt(j) : 0;
        int close = j + (endSign != 0 ? 1 : 0);
        if (text.startsWith("%}", close)) {
          String body = text.substring(i, end);
          if (sign == '-') {
            body = Py.rstrip(body);
          } else if (sign != '+') {
            lineStarting = i > 0 && text.charAt(i - 1) == '\n';
            body = lstripBlock(body);
          }
          if (!body.isEmpty()) {
            tokens.add(new Token(Kind.DATA, body, i));
          }
          pos = close + 2;
          afterTagEnd(endSign);
          return true;
        }
      }
      search = end + 2;
    }
  }

  private void tag(int open, Kind begin, Kind end, char closer) {
    tokens.add(new Token(begin, "", open));
    Deque<Character> brackets = new ArrayDeque<>();
    while (true) {
      pos = skipSpace(pos);
      if (pos >= text.length()) {
        String what = begin == Kind.VAR_BEGIN ? "'}}'" : "'%}'";
        throw source.error("unexpected end of template: the tag opened here is missing " + what, open);
      }
      if (brackets.isEmpty() && tagEnd(end, closer)) {
        return;
      }
      char c = text.charAt(pos);
      if (c == '\'' || c == '"') {
        string(c);
      } else if (Character.isDigit(c)) {
        number();
      } else if (isNameStart(c)) {
        int start = pos;
        while (pos < text.length() && isNameChar(text.charAt(pos))) {
          pos++;
        }
        tokens.add(new Token(Kind.NAME, text.substring(start, pos), start));
      } else {
        operator(brackets);
      }
    }
  }

  private void operator(Deque<Character> brackets) {
    for (String op : OPERATORS) {
      if (text.startsWith(op, pos)) {
        switch (op) {
          case "(" -> brackets.push(')');
          case "[" -> brackets.push(']');
          case "{" -> brackets.push('}');
          case ")", "]", "}" -> {
            if (brackets.isEmpty()) {
              throw source.error("unexpected '" + op + "'", pos);
            }
            char expected = brackets.pop();
            if (expected != op.charAt(0)) {
              throw source.error("unexpected '" + op + "', expected '" + expected + "'", pos);
            }
          }
          default -> {}
        }
        tokens.add(new Token(Kind.OP, op, pos));
        pos += op.length();
        return;
      }
    }
    throw source.error("unexpected character '" + text.charAt(pos) + "' in tag", pos);
  }

  private void number() {
    int start = pos;
    digits();
    boolean isFloat = false;
    boolean afterDot = start > 0 && text.charAt(start - 1) == '.';
    if (!afterDot
        && pos + 1 < text.length()
        && text.charAt(pos) == '.'
        && Character.isDigit(text.charAt(pos + 1))) {
      pos++;
      digits();
      isFloat = true;
    }
    if (!afterDot && pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
      int save = pos;
      pos++;
      if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) {
        pos++;
      }
      if (pos < text.length() && Character.isDigit(text.charAt(pos))) {
        digits();
        isFloat = true;
      } else {
        pos = save;
      }
    }
    String digits = text.substring(start, pos).replace("_", "");
    tokens.add(new Token(isFloat ? Kind.FLOAT : Kind.INTEGER, digits, start));
  }

  private void digits() {
    while (pos < text.length()
        && (Character.isDigit(text.charAt(pos))
            || (text.charAt(pos) == '_'
                && pos + 1 < text.length()
                && Character.isDigit(text.charAt(pos + 1))))) {
      pos++;
    }
  }

  /** A quoted literal, decoded like Python's {@code unicode-escape} codec, as jinja2 does. */
  private void string(char quote) {
    int start = pos;
    StringBuilder out = new StringBuilder();
    pos++;
    while (true) {
      if (pos >= text.length()) {
        throw source.error("unterminated string literal", start);
      }
      char c = text.charAt(pos);
      if (c == quote) {
        pos++;
        break;
      }
      if (c != '\\' || pos + 1 >= text.length()) {
        out.append(c);
        pos++;
        continue;
      }
      char e = text.charAt(pos + 1);
      pos += 2;
      switch (e) {
        case '\n' -> {}
        case '\\', '\'', '"' -> out.append(e);
        case 'a' -> out.append('\u0007');
        case 'b' -> out.append('\b');
        case 'f' -> out.append('\f');
        case 'n' -> out.append('\n');
        case 'r' -> out.append('\r');
        case 't' -> out.append('\t');
        case 'v' -> out.append('\u000b');
        case 'x' -> out.appendCodePoint(hexEscape(2, start));
        case 'u' -> out.appendCodePoint(hexEscape(4, start));
        case 'U' -> out.appendCodePoint(hexEscape(8, start));
        default -> {
          if (e >= '0' && e <= '7') {
            int value = e - '0';
            for (int n = 0; n < 2 && pos < text.length(); n++) {
              char d = text.charAt(pos);
              if (d < '0' || d > '7') {
                break;
              }
              value = value * 8 + (d - '0');
              pos++;
            }
            out.appendCodePoint(value);
          } else {
            out.append('\\').append(e);
          }
        }
      }
    }
    tokens.add(new Token(Kind.STRING, out.toString(), start));
  }

  private int hexEscape(int length, int literalStart) {
    if (pos + length > text.length()) {
      throw source.error("truncated \\x, \\u or \\U escape in string literal", literalStart);
    }
    try {
      int value = Integer.parseUnsignedInt(text.substring(pos, pos + length), 16);
      if (!Character.isValidCodePoint(value)) {
        throw source.error("escape out of the Unicode range in string literal", literalStart);
      }
      pos += length;
      return value;
    } catch (NumberFormatException e) {
      throw source.error("malformed \\x, \\u or \\U escape in string literal", literalStart);
    }
  }

  private int skipSpace(int i) {
    while (i < text.length() && Py.isSpace(text.charAt(i))) {
      i++;
    }
    return i;
  }

  private static boolean isNameStart(char c) {
    return c == '_' || Character.isLetter(c);
  }

  private static boolean isNameChar(char c) {
    return c == '_' || Character.isLetterOrDigit(c);
  }
}
