package dev.selma.langchain4j;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.Content;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.json.JsonAnyOfSchema;
import dev.langchain4j.model.chat.request.json.JsonArraySchema;
import dev.langchain4j.model.chat.request.json.JsonBooleanSchema;
import dev.langchain4j.model.chat.request.json.JsonEnumSchema;
import dev.langchain4j.model.chat.request.json.JsonIntegerSchema;
import dev.langchain4j.model.chat.request.json.JsonNullSchema;
import dev.langchain4j.model.chat.request.json.JsonNumberSchema;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonRawSchema;
import dev.langchain4j.model.chat.request.json.JsonReferenceSchema;
import dev.langchain4j.model.chat.request.json.JsonSchemaElement;
import dev.langchain4j.model.chat.request.json.JsonStringSchema;
import dev.selma.engine.tokenizer.template.Message;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns LangChain4j messages and tool specifications into what a chat template reads: messages as
 * {@link Message}s and tools as JSON-schema maps in OpenAI's function format, the shape Hugging Face's
 * {@code apply_chat_template} passes to Llama 3.1, Qwen2.5 and Mistral templates.
 */
final class Conversation {
  static final ObjectMapper JSON = new ObjectMapper();

  private Conversation() {}

  static List<Message> messages(List<ChatMessage> messages) {
    List<Message> out = new ArrayList<>(messages.size());
    for (ChatMessage m : messages) {
      out.add(switch (m) {
        case SystemMessage s -> Message.system(s.text());
        case UserMessage u -> user(u);
        case AiMessage a -> assistant(a);
        case ToolExecutionResultMessage t -> {
          Message tool = Message.tool(t.text());
          if (t.id() != null) {
            tool = tool.with("tool_call_id", t.id());
          }
          yield t.toolName() == null ? tool : tool.with("name", t.toolName());
        }
        default -> throw new UnsupportedFeatureException("messages of type " + m.type() + " are not supported by Selma");
      });
    }
    return out;
  }

  private static Message user(UserMessage u) {
    StringBuilder text = new StringBuilder();
    for (Content c : u.contents()) {
      if (!(c instanceof TextContent t)) {
        throw new UnsupportedFeatureException(c.type().name().toLowerCase(java.util.Locale.ROOT) + " content in user messages is not supported by Selma: "
            + "it runs text-only models");
      }
      text.append(t.text());
    }
    Message m = Message.user(text.toString());
    return u.name() == null ? m : m.with("name", u.name());
  }

  private static Message assistant(AiMessage a) {
    if (!a.hasToolExecutionRequests()) {
      return Message.assistant(a.text() == null ? "" : a.text());
    }
    List<Map<String, Object>> calls = new ArrayList<>();
    for (ToolExecutionRequest r : a.toolExecutionRequests()) {
      Map<String, Object> call = new LinkedHashMap<>(Message.toolCall(r.name(), arguments(r)));
      if (r.id() != null) {
        call.put("id", r.id());
      }
      calls.add(call);
    }
    return Message.assistant(a.text(), calls);
  }

  private static Map<String, Object> arguments(ToolExecutionRequest r) {
    String args = r.arguments() == null || r.arguments().isBlank() ? "{}" : r.arguments();
    try {
      return JSON.readValue(args, new TypeReference<LinkedHashMap<String, Object>>() {});
    } catch (JsonProcessingException e) {
      throw new InvalidRequestException("the arguments of the call to tool '" + r.name()
          + "' are not a JSON object: " + args, e);
    }
  }

  /** Tool specifications as OpenAI-style function definitions. */
  static List<Map<String, Object>> tools(List<ToolSpecification> specifications) {
    List<Map<String, Object>> tools = new ArrayList<>();
    for (ToolSpecification s : specifications) {
      Map<String, Object> function = new LinkedHashMap<>();
      function.put("name", s.name());
      if (s.description() != null) {
        function.put("description", s.description());
      }
      JsonObjectSchema parameters = s.parameters() != null ? s.parameters() : JsonObjectSchema.builder().build();
      function.put("parameters", schema(parameters));
      Map<String, Object> tool = new LinkedHashMap<>();
      tool.put("type", "function");
      tool.put("function", function);
      tools.add(tool);
    }
    return tools;
  }

  /** A JSON-schema element as plain maps and lists. */
  static Map<String, Object> schema(JsonSchemaElement e) {
    Map<String, Object> m = new LinkedHashMap<>();
    switch (e) {
      case JsonObjectSchema o -> {
        m.put("type", "object");
        describe(m, o.description());
        Map<String, Object> properties = new LinkedHashMap<>();
        if (o.properties() != null) {
          o.properties().forEach((name, p) -> properties.put(name, schema(p)));
        }
        m.put("properties", properties);
        if (o.required() != null && !o.required().isEmpty()) {
          m.put("required", List.copyOf(o.required()));
        }
        if (o.additionalProperties() != null) {
          m.put("additionalProperties", o.additionalProperties());
        }
        if (o.definitions() != null && !o.definitions().isEmpty()) {
          Map<String, Object> defs = new LinkedHashMap<>();
          o.definitions().forEach((name, d) -> defs.put(name, schema(d)));
          m.put("$defs", defs);
        }
      }
      case JsonStringSchema s -> simple(m, "string", s.description());
      case JsonIntegerSchema i -> simple(m, "integer", i.description());
      case JsonNumberSchema n -> simple(m, "number", n.description());
      case JsonBooleanSchema b -> simple(m, "boolean", b.description());
      case JsonNullSchema n -> m.put("type", "null");
      case JsonEnumSchema en -> {
        simple(m, "string", en.description());
        m.put("enum", List.copyOf(en.enumValues()));
      }
      case JsonArraySchema a -> {
        simple(m, "array", a.description());
        if (a.items() != null) {
          m.put("items", schema(a.items()));
        }
      }
      case JsonAnyOfSchema any -> {
        describe(m, any.description());
        m.put("anyOf", any.anyOf().stream().map(Conversation::schema).toList());
      }
      case JsonReferenceSchema r -> {
        m.put("$ref", "#/$defs/" + r.reference());
        describe(m, r.description());
      }
      case JsonRawSchema raw -> {
        try {
          m.putAll(JSON.readValue(raw.schema(), new TypeReference<LinkedHashMap<String, Object>>() {}));
        } catch (JsonProcessingException ex) {
          throw new InvalidRequestException("a raw JSON schema is not a JSON object: " + raw.schema(), ex);
        }
      }
      default -> throw new UnsupportedFeatureException("JSON schema element " + e.getClass().getSimpleName()
          + " is not supported by Selma");
    }
    return m;
  }

  private static void simple(Map<String, Object> m, String type, String description) {
    m.put("type", type);
    describe(m, description);
  }

  private static void describe(Map<String, Object> m, String description) {
    if (description != null) {
      m.put("description", description);
    }
  }
}
