package dev.selma.engine.tokenizer.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Renders the conversations of {@code tools/render_chat_template_fixtures.py} with real model
 * templates and small feature templates, and compares with jinja2's output byte for byte. Cases
 * where jinja2 raised must raise too: {@code raise_exception} as {@link TemplateRaisedException}
 * with the template's message, anything else as {@link TemplateException} with jinja2's message.
 */
class ChatTemplateFixturesTest {
  private static final List<String> MODEL_TEMPLATES = List.of(
      "llama-3.1-instruct", "llama-3.2-instruct", "llama-3.1-lenml", "llama-3-lenml",
      "qwen2.5", "qwen3", "mistral-7b-instruct-v0.2");
  private static final ObjectMapper JSON = new ObjectMapper();

  @TestFactory
  Stream<DynamicTest> modelTemplates() {
    return MODEL_TEMPLATES.stream().flatMap(name -> {
      JsonNode fixture = json(name + ".fixtures.json.gz");
      ChatTemplate template = ChatTemplate.parse(resource(fixture.get("template").asText())).withClock(clock(fixture));
      List<DynamicTest> tests = new ArrayList<>();
      for (JsonNode c : fixture.get("cases")) {
        tests.add(DynamicTest.dynamicTest(name + ": " + c.get("name").asText(), () -> {
          Map<String, Object> variables = asMap(c.get("variables"));
          List<Message> messages = new ArrayList<>();
          for (Object m : (List<?>) variables.remove("messages")) {
            messages.add(message((Map<?, ?>) m));
          }
          boolean generationPrompt = (Boolean) variables.remove("add_generation_prompt");
          check(c, () -> template.render(messages, generationPrompt, variables));
        }));
      }
      return tests.stream();
    });
  }

  @TestFactory
  Stream<DynamicTest> languageFeatures() {
    JsonNode fixture = json("features.fixtures.json.gz");
    Clock clock = clock(fixture);
    List<DynamicTest> tests = new ArrayList<>();
    for (JsonNode c : fixture.get("cases")) {
      tests.add(DynamicTest.dynamicTest(c.get("name").asText(), () -> {
        ChatTemplate template = ChatTemplate.parse(c.get("template").asText()).withClock(clock);
        check(c, () -> template.render(asMap(c.get("variables"))));
      }));
    }
    return tests.stream();
  }

  @TestFactory
  Stream<DynamicTest> everyModelTemplateHasFixturesForBothGenerationPromptSettings() {
    return MODEL_TEMPLATES.stream().map(name -> DynamicTest.dynamicTest(name, () -> {
      JsonNode cases = json(name + ".fixtures.json.gz").get("cases");
      assertTrue(cases.size() >= 20, name + " has too few fixtures");
      long rendered = 0;
      for (JsonNode c : cases) {
        rendered += c.has("expected") ? 1 : 0;
      }
      assertTrue(rendered >= 12, name + " has too few successful renders");
    }));
  }

  private interface Render {
    String run();
  }

  private static void check(JsonNode c, Render render) {
    if (c.has("expected")) {
      assertEquals(c.get("expected").asText(), render.run());
      return;
    }
    JsonNode error = c.get("error");
    TemplateException e = assertThrows(TemplateException.class, render::run);
    if (error.get("type").asText().equals("TemplateError")) {
      assertInstanceOf(TemplateRaisedException.class, e);
    } else {
      assertFalse(e instanceof TemplateRaisedException, "not raised by the template: " + e.getMessage());
    }
    assertEquals(error.get("message").asText(), e.detail());
    assertTrue(e.line() > 0, "error has a position: " + e.getMessage());
  }

  private static Message message(Map<?, ?> dict) {
    Map<String, Object> fields = new LinkedHashMap<>();
    List<Map<String, Object>> toolCalls = new ArrayList<>();
    dict.forEach((k, v) -> {
      switch ((String) k) {
        case "role", "content" -> {}
        case "tool_calls" -> {
          for (Object call : (List<?>) v) {
            toolCalls.add(asStringMap((Map<?, ?>) call));
          }
        }
        default -> fields.put((String) k, v);
      }
    });
    return new Message((String) dict.get("role"), dict.get("content"), toolCalls, fields);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> asStringMap(Map<?, ?> map) {
    return (Map<String, Object>) map;
  }

  private static Clock clock(JsonNode fixture) {
    LocalDateTime now = LocalDateTime.parse(fixture.get("now").asText());
    return Clock.fixed(now.toInstant(ZoneOffset.UTC), ZoneOffset.UTC);
  }

  private static Map<String, Object> asMap(JsonNode node) {
    return asStringMap((Map<?, ?>) value(node));
  }

  /** JSON as the template value model: insertion-ordered maps, lists, Long, Double, String, Boolean, null. */
  private static Object value(JsonNode node) {
    if (node.isObject()) {
      Map<String, Object> map = new LinkedHashMap<>();
      node.properties().forEach(e -> map.put(e.getKey(), value(e.getValue())));
      return map;
    }
    if (node.isArray()) {
      List<Object> list = new ArrayList<>();
      node.forEach(n -> list.add(value(n)));
      return list;
    }
    if (node.isIntegralNumber()) {
      return node.asLong();
    }
    if (node.isNumber()) {
      return node.asDouble();
    }
    if (node.isBoolean()) {
      return node.asBoolean();
    }
    return node.isNull() ? null : node.asText();
  }

  private static JsonNode json(String resource) {
    try {
      return JSON.readTree(resource(resource));
    } catch (IOException e) {
      throw new IllegalStateException(resource, e);
    }
  }

  /** A test resource's text; {@code .gz} ones (the generated fixtures) uncompressed. */
  static String resource(String name) {
    try (InputStream in = ChatTemplateFixturesTest.class.getResourceAsStream("/template/" + name)) {
      if (in == null) {
        throw new IllegalStateException("missing test resource /template/" + name);
      }
      byte[] bytes = name.endsWith(".gz") ? new java.util.zip.GZIPInputStream(in).readAllBytes() : in.readAllBytes();
      return new String(bytes, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalStateException(name, e);
    }
  }
}
