package dev.selma.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ImageContent;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.json.JsonArraySchema;
import dev.langchain4j.model.chat.request.json.JsonEnumSchema;
import dev.langchain4j.model.chat.request.json.JsonIntegerSchema;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonRawSchema;
import dev.selma.engine.tokenizer.template.Message;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** LangChain4j messages and tool specifications as a chat template reads them. */
class ConversationTest {

  @Test
  void messages() {
    ToolExecutionRequest call = ToolExecutionRequest.builder().id("call_9").name("add")
        .arguments("{\"a\": 1, \"b\": [2]}").build();
    List<Message> m = Conversation.messages(List.of(
        SystemMessage.from("sys"),
        UserMessage.from("ann", "hi"),
        UserMessage.from(TextContent.from("two "), TextContent.from("parts")),
        AiMessage.from("hello"),
        AiMessage.from(call),
        ToolExecutionResultMessage.from(call, "3")));
    assertEquals(Message.system("sys"), m.get(0));
    assertEquals(Message.user("hi").with("name", "ann"), m.get(1));
    assertEquals(Message.user("two parts"), m.get(2));
    assertEquals(Message.assistant("hello"), m.get(3));
    Map<String, Object> expectedCall = new java.util.LinkedHashMap<>(Message.toolCall("add",
        Map.of("a", 1, "b", List.of(2))));
    expectedCall.put("id", "call_9");
    assertEquals(Message.assistant(null, List.of(expectedCall)), m.get(4));
    assertEquals(Message.tool("3").with("tool_call_id", "call_9").with("name", "add"), m.get(5));

    assertThrows(UnsupportedFeatureException.class, () -> Conversation.messages(List.of(
        UserMessage.from(TextContent.from("look"), ImageContent.from("https://example.org/cat.png")))));
    assertThrows(InvalidRequestException.class, () -> Conversation.messages(List.of(AiMessage.from(
        ToolExecutionRequest.builder().name("add").arguments("[1, 2]").build()))));
  }

  @Test
  void toolsAsOpenAiFunctions() {
    ToolSpecification spec = ToolSpecification.builder()
        .name("search")
        .description("Searches the library")
        .parameters(JsonObjectSchema.builder()
            .addStringProperty("query", "words to find")
            .addProperty("limit", JsonIntegerSchema.builder().build())
            .addProperty("sort", JsonEnumSchema.builder().enumValues("score", "date").build())
            .addProperty("fields", JsonArraySchema.builder().items(JsonObjectSchema.builder()
                .addBooleanProperty("stored").build()).build())
            .required("query")
            .build())
        .build();
    assertEquals(List.of(Map.of("type", "function", "function", Map.of(
        "name", "search",
        "description", "Searches the library",
        "parameters", Map.of(
            "type", "object",
            "properties", Map.of(
                "query", Map.of("type", "string", "description", "words to find"),
                "limit", Map.of("type", "integer"),
                "sort", Map.of("type", "string", "enum", List.of("score", "date")),
                "fields", Map.of("type", "array", "items", Map.of("type", "object", "properties",
                    Map.of("stored", Map.of("type", "boolean"))))),
            "required", List.of("query"))))), Conversation.tools(List.of(spec)));
    assertEquals(Map.of("type", "object", "properties", Map.of()),
        Conversation.tools(List.of(ToolSpecification.builder().name("now").build())).get(0).get("function") instanceof
            Map<?, ?> f ? f.get("parameters") : null, "a tool without parameters takes an empty object");
    assertEquals(Map.of("type", "string", "format", "date"),
        Conversation.schema(JsonRawSchema.from("{\"type\": \"string\", \"format\": \"date\"}")));
  }
}
