package dev.selma.engine.tokenizer.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The public API as the LangChain4j adapter and the Solr handler use it. */
class ChatTemplateApiTest {
  private static final ChatTemplate QWEN25 = ChatTemplate.parse(ChatTemplateFixturesTest.resource("qwen2.5.jinja"));
  private static final ChatTemplate LLAMA31 =
      ChatTemplate.parse(ChatTemplateFixturesTest.resource("llama-3.1-instruct.jinja"));

  @Test
  void toolCallConversationBuiltWithJavaValuesMatchesTransformers() throws Exception {
    Map<String, Object> fixture = new ObjectMapper().readValue(
        ChatTemplateFixturesTest.resource("qwen2.5.fixtures.json.gz"), Map.class);
    Map<?, ?> roundTrip = ((List<?>) fixture.get("cases")).stream()
        .map(Map.class::cast)
        .filter(c -> c.get("name").equals("tool_round_trip/add_generation_prompt=True"))
        .findFirst().orElseThrow();
    Object tools = ((Map<?, ?>) roundTrip.get("variables")).get("tools");

    Map<String, Object> arguments = new LinkedHashMap<>();
    arguments.put("location", "Paris, FR");
    arguments.put("unit", "celsius");
    arguments.put("days", 2); // an Integer, as Java callers pass numbers
    List<Message> conversation = List.of(
        Message.system("You are a helpful assistant. Answer briefly."),
        Message.user("What's the weather in Paris?"),
        Message.assistant(null, List.of(Message.toolCall("get_current_weather", arguments))),
        Message.tool("{\"temperature\": 21.5, \"sky\": \"clear\"}").with("name", "get_current_weather"));

    String prompt = QWEN25.render(conversation, true, Map.of("eos_token", "<|im_end|>", "pad_token", "<|endoftext|>", "tools", tools));
    assertEquals(roundTrip.get("expected"), prompt);
  }

  @Test
  void strftimeNowReadsTheGivenClockInItsZone() {
    ChatTemplate template = ChatTemplate.parse("{{ strftime_now('%d %b %Y %H:%M') }}")
        .withClock(Clock.fixed(Instant.parse("2025-12-31T23:30:00Z"), ZoneId.of("Europe/Berlin")));
    assertEquals("01 Jan 2026 00:30", template.render(Map.of()));
  }

  @Test
  void defaultVariablesAreThoseOfApplyChatTemplate() {
    ChatTemplate template = ChatTemplate.parse(
        "{{ tools is none }} {{ documents is none }} {{ add_generation_prompt }} {{ messages | length }} {{ bos_token is defined }}");
    assertEquals("True True False 1 False", template.render(List.of(Message.user("x")), false, Map.of()));
  }

  @Test
  void aMillionTokenDocumentRendersInOnePass() {
    String document = "word ".repeat(1_000_000);
    String prompt = LLAMA31.render(List.of(Message.user(document + " Summarize.")), true,
        Map.of("bos_token", "<|begin_of_text|>", "eos_token", "<|eot_id|>"));
    assertTrue(prompt.startsWith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"));
    assertTrue(prompt.endsWith("word word  Summarize.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
  }
}
