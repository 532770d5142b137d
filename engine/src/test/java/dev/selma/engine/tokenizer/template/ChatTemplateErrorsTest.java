package dev.selma.engine.tokenizer.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Broken templates fail at parse time, naming the problem and its place; runtime errors too. */
class ChatTemplateErrorsTest {

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', quoteCharacter = '"', textBlock = """
      # template                                   | line | column | detail
      "a\\n{% if x %}yes"                          | 2    | 4      | "unexpected end of template: '{% if %}' is never closed (expected '{% elif %}' or '{% else %}' or '{% endif %}')"
      "{% for m in messages %}{{ m }}"             | 1    | 4      | "unexpected end of template: '{% for %}' is never closed (expected '{% else %}' or '{% endfor %}')"
      "text {{ name "                               | 1    | 6      | "unexpected end of template: the tag opened here is missing '}}'"
      "{% if x %}"                                  | 1    | 4      | "unexpected end of template: '{% if %}' is never closed (expected '{% elif %}' or '{% else %}' or '{% endif %}')"
      "{# never closed"                             | 1    | 1      | "missing end of comment tag '#}' for the comment opened here"
      "{{ 1 + }}"                                   | 1    | 8      | "unexpected '}}', expected an expression"
      "{{ 'unterminated }}"                         | 1    | 4      | "unterminated string literal"
      "{{ (1 }}"                                    | 1    | 7      | "unexpected '}', expected ')'"
      "{{ x ] }}"                                   | 1    | 6      | "unexpected ']'"
      "ok\\n  {% endif %}"                          | 2    | 6      | "unexpected '{% endif %}': there is no open block it belongs to"
      "{% frobnicate %}"                            | 1    | 4      | "unknown tag 'frobnicate'"
      "{% include 'other.jinja' %}"                 | 1    | 4      | "the 'include' tag is not available in chat templates"
      "{{ messages | frobnicate }}"                 | 1    | 15     | "unknown filter 'frobnicate'"
      "{% if x is frobnicated %}{% endif %}"        | 1    | 12     | "unknown test 'frobnicated'"
      "{% for x in %}{% endfor %}"                  | 1    | 13     | "unexpected '%}', expected an expression"
      "{% set %}"                                   | 1    | 8      | "unexpected '%}', expected a variable name after 'set'"
      "{% break %}"                                 | 1    | 4      | "'{% break %}' outside of a for loop"
      "{% macro m(a=1, b) %}{% endmacro %}"         | 1    | 17     | "non-default parameter 'b' follows a default one"
      "{{ f(a=1, 2) }}"                             | 1    | 11     | "positional argument follows keyword argument"
      "{% if x %}{% else %}{% else %}{% endif %}"   | 1    | 24     | "unexpected '{% else %}': there is no open block it belongs to"
      """)
  void syntaxErrorsNameTheProblemAndThePlace(String template, int line, int column, String detail) {
    String source = template.replace("\\n", "\n");
    TemplateException e = assertThrows(TemplateException.class, () -> ChatTemplate.parse(source));
    assertEquals(detail, e.detail());
    assertEquals(line, e.line(), e.getMessage());
    assertEquals(column, e.column(), e.getMessage());
    assertEquals(detail + " (line " + line + ", column " + column + ")", e.getMessage());
  }

  @Test
  void callingAnUndefinedFunctionNamesItWhereItIsCalled() {
    ChatTemplate template = ChatTemplate.parse("Hello\n{{ user | trim }} {{ format_date(now) }}");
    TemplateException e = assertThrows(TemplateException.class, () -> template.render(Map.of("user", "x")));
    assertEquals("'format_date' is undefined", e.detail());
    assertEquals(2, e.line());
    assertEquals(22, e.column());
    assertFalse(e instanceof TemplateRaisedException);
  }

  @Test
  void mistralRejectsASystemMessageWithItsOwnMessage() {
    ChatTemplate mistral = ChatTemplate.parse(ChatTemplateFixturesTest.resource("mistral-7b-instruct-v0.2.jinja"));
    List<Message> conversation = List.of(Message.user("Hi"), Message.user("Hi again"));
    TemplateRaisedException e = assertThrows(TemplateRaisedException.class,
        () -> mistral.render(conversation, true, Map.of("bos_token", "<s>", "eos_token", "</s>")));
    assertEquals("Conversation roles must alternate user/assistant/user/assistant/...", e.detail());
    assertEquals(1, e.line());
  }

  @Test
  void valuesOutsideTheTemplateValueModelAreRejected() {
    ChatTemplate template = ChatTemplate.parse("{{ x }}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> template.render(Map.of("x", new Object())));
    assertEquals("template variables must be strings, numbers, booleans, null, lists or maps, not java.lang.Object",
        e.getMessage());
  }
}
