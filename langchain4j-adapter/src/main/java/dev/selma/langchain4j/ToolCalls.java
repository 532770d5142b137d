package dev.selma.langchain4j;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * Reads tool calls out of a model's answer. Two formats, chosen by what the chat template asks for:
 * <ul>
 *   <li>{@link Format#JSON} (Llama 3.1/3.2, Mistral): the whole answer is a JSON object {@code {"name":
 *       ..., "parameters": {...}}} (or {@code "arguments"}), several such objects separated by
 *       whitespace, or a JSON array of them (Mistral writes {@code [TOOL_CALLS]} before the array, a
 *       special token that decoding leaves out).
 *   <li>{@link Format#TAGGED} (Qwen2.5, Hermes): optional text followed by one or more
 *       {@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>} blocks.
 * </ul>
 * An answer that does not parse as tool calls of its format is plain text.
 */
final class ToolCalls {
  static final String OPEN = "<tool_call>";
  static final String CLOSE = "</tool_call>";

  enum Format {
    JSON,
    TAGGED
  }

  /**
   * An answer split into text and tool calls.
   *
   * @param text the text before the calls (null when there is none), or the whole answer when there are
   *     no calls
   * @param calls the calls, in order; empty for a plain answer
   */
  record Parsed(String text, List<ToolExecutionRequest> calls) {}

  private ToolCalls() {}

  static Parsed parse(String output, Format format) {
    List<ToolExecutionRequest> calls = new ArrayList<>();
    return switch (format) {
      case JSON -> {
        String t = output.strip();
        if (!(t.startsWith("{") || t.startsWith("[")) || !readJsonCalls(t, calls)) {
          yield new Parsed(output, List.of());
        }
        yield new Parsed(null, calls);
      }
      case TAGGED -> {
        int first = output.indexOf(OPEN);
        if (first < 0) {
          yield new Parsed(output, List.of());
        }
        int at = first;
        while (at >= 0) {
          int from = at + OPEN.length();
          int end = output.indexOf(CLOSE, from);
          String body = end < 0 ? output.substring(from) : output.substring(from, end);
          JsonNode node = readTree(body.strip());
          if (node == null || !node.isObject() || !addCall(node, calls)) {
            yield new Parsed(output, List.of());
          }
          at = end < 0 ? -1 : output.indexOf(OPEN, end + CLOSE.length());
          if (end >= 0 && at < 0 && !output.substring(end + CLOSE.length()).isBlank()) {
            // Text after the last call: not the shape the template asked for, so it is no call.
            yield new Parsed(output, List.of());
          }
        }
        String text = output.substring(0, first);
        yield new Parsed(text.isBlank() ? null : text, calls);
      }
    };
  }

  /**
   * How many leading characters of a partial answer can be streamed as text already: none while the
   * answer may still turn out to be a JSON tool call, and everything up to (not including) a
   * {@code <tool_call>} tag or a suffix that may begin one.
   */
  static int streamable(String output, Format format) {
    return switch (format) {
      case JSON -> {
        String t = output.stripLeading();
        yield t.isEmpty() || t.startsWith("{") || t.startsWith("[") ? 0 : output.length();
      }
      case TAGGED -> {
        int upTo = output.indexOf(OPEN);
        if (upTo < 0) {
          int keep = 0;
          for (int k = Math.min(OPEN.length() - 1, output.length()); k > 0; k--) {
            if (output.endsWith(OPEN.substring(0, k))) {
              keep = k;
              break;
            }
          }
          upTo = output.length() - keep;
        }
        // Blank text before a call is no text (the answer's text is then null), so it waits.
        yield output.substring(0, upTo).isBlank() ? 0 : upTo;
      }
    };
  }

  private static boolean readJsonCalls(String text, List<ToolExecutionRequest> calls) {
    try (MappingIterator<JsonNode> values = Conversation.JSON.readerFor(JsonNode.class).readValues(text)) {
      boolean any = false;
      while (values.hasNext()) {
        JsonNode node = values.next();
        if (node.isArray()) {
          if (node.isEmpty()) {
            return false;
          }
          for (JsonNode element : node) {
            if (!addCall(element, calls)) {
              return false;
            }
          }
        } else if (!addCall(node, calls)) {
          return false;
        }
        any = true;
      }
      return any;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  private static JsonNode readTree(String text) {
    try {
      return Conversation.JSON.readTree(text);
    } catch (JsonProcessingException e) {
      return null;
    }
  }

  private static boolean addCall(JsonNode node, List<ToolExecutionRequest> calls) {
    if (!node.isObject() || !node.path("name").isTextual()) {
      return false;
    }
    JsonNode args = node.has("parameters") ? node.get("parameters") : node.get("arguments");
    String arguments;
    if (args == null || args.isNull()) {
      arguments = "{}";
    } else if (args.isObject()) {
      arguments = args.toString();
    } else if (args.isTextual() && readTree(args.asText()) instanceof JsonNode parsed && parsed.isObject()) {
      arguments = parsed.toString();
    } else {
      return false;
    }
    calls.add(ToolExecutionRequest.builder()
        .id("call_" + UUID.randomUUID().toString().replace("-", "").substring(0, 24))
        .name(node.get("name").asText())
        .arguments(arguments)
        .build());
    return true;
  }
}
