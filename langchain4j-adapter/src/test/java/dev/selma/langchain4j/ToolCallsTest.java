package dev.selma.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.selma.langchain4j.ToolCalls.Format;
import dev.selma.langchain4j.ToolCalls.Parsed;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Reading tool calls out of answers, and holding back streamed text that may become one. */
class ToolCallsTest {

  private static List<String> calls(Parsed p) {
    return p.calls().stream().map(c -> c.name() + " " + c.arguments()).toList();
  }

  @Test
  void llamaJsonCalls() {
    Parsed p = ToolCalls.parse(" {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}\n", Format.JSON);
    assertNull(p.text());
    assertEquals(List.of("get_weather {\"city\":\"Paris\"}"), calls(p));
    ToolExecutionRequest call = p.calls().get(0);
    assertTrue(call.id().startsWith("call_"));

    assertEquals(List.of("a {\"x\":1}", "b {}"), calls(ToolCalls.parse(
        "{\"name\": \"a\", \"parameters\": {\"x\": 1}}\n{\"name\": \"b\", \"parameters\": {}}", Format.JSON)));
    assertEquals(List.of("a {\"x\":1}", "b {}"), calls(ToolCalls.parse(
        "[{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\"}]", Format.JSON)),
        "Mistral: an array after [TOOL_CALLS], arguments may be absent");
    assertEquals(List.of("a {\"x\":1}"), calls(ToolCalls.parse(
        "{\"name\": \"a\", \"arguments\": \"{\\\"x\\\": 1}\"}", Format.JSON)), "arguments as a JSON string");
    ToolExecutionRequest first = ToolCalls.parse("{\"name\": \"a\"}", Format.JSON).calls().get(0);
    assertNotEquals(first.id(), ToolCalls.parse("{\"name\": \"a\"}", Format.JSON).calls().get(0).id());
  }

  @Test
  void plainAnswersStayText() {
    for (String answer : List.of("The weather is fine.", "{\"city\": \"Paris\"}", "{\"name\": 3}",
        "{\"name\": \"a\", \"parameters\": [1]}", "{\"name\": \"a\"} trailing words", "[]", "{not json",
        "Use {\"name\": \"a\"} like this")) {
      Parsed p = ToolCalls.parse(answer, Format.JSON);
      assertEquals(answer, p.text());
      assertTrue(p.calls().isEmpty(), answer);
    }
  }

  @Test
  void qwenTaggedCalls() {
    Parsed p = ToolCalls.parse("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
        + "{\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n"
        + "</tool_call>", Format.TAGGED);
    assertEquals("Let me check.\n", p.text());
    assertEquals(List.of("get_weather {\"city\":\"Paris\"}", "get_time {}"), calls(p));

    Parsed unclosed = ToolCalls.parse("<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 2}}", Format.TAGGED);
    assertNull(unclosed.text());
    assertEquals(List.of("a {\"x\":2}"), calls(unclosed), "the model may stop before the closing tag");

    for (String answer : List.of("No tools needed.", "<tool_call>\nnot json\n</tool_call>",
        "<tool_call>{\"name\": \"a\"}</tool_call> and more text")) {
      Parsed plain = ToolCalls.parse(answer, Format.TAGGED);
      assertEquals(answer, plain.text());
      assertTrue(plain.calls().isEmpty(), answer);
    }
  }

  @Test
  void streamedTextWaitsWhileItMayBeACall() {
    assertEquals(0, ToolCalls.streamable("", Format.JSON));
    assertEquals(0, ToolCalls.streamable("  \n", Format.JSON));
    assertEquals(0, ToolCalls.streamable(" {\"name\": \"get_", Format.JSON));
    assertEquals(0, ToolCalls.streamable("[{\"name\"", Format.JSON));
    assertEquals(5, ToolCalls.streamable("Hello", Format.JSON), "a call is the whole answer, so text is text");

    assertEquals(5, ToolCalls.streamable("Hello", Format.TAGGED));
    assertEquals(6, ToolCalls.streamable("Hello <tool", Format.TAGGED), "a suffix that may open a tag waits");
    assertEquals(6, ToolCalls.streamable("Hello <tool_call>\n{\"na", Format.TAGGED));
    assertEquals(8, ToolCalls.streamable("Hello <b", Format.TAGGED), "'<b' cannot open a tag");
    assertEquals(0, ToolCalls.streamable("\n<tool_call>", Format.TAGGED), "blank text before a call waits");
  }
}
