package dev.selma.engine.tokenizer.template;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One chat message as a template sees it: a dict with {@code role}, {@code content}, {@code
 * tool_calls} when the assistant called tools, and any further fields (for example {@code name} or
 * {@code tool_call_id} of a tool result, or {@code reasoning_content}).
 *
 * @param role "system", "user", "assistant", "tool", ...
 * @param content the text; null renders as Python's None; a map or list is passed through (some
 *     templates accept structured tool results)
 * @param toolCalls OpenAI-style calls, each {@code {"type": "function", "function": {"name": ...,
 *     "arguments": {...}}}} (see {@link #toolCall}); empty when there are none
 * @param fields further keys of the message dict, in order
 */
public record Message(String role, Object content, List<Map<String, Object>> toolCalls, Map<String, Object> fields) {
  public Message {
    Objects.requireNonNull(role, "role");
    toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
    fields = fields == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(fields));
  }

  public Message(String role, String content) {
    this(role, content, List.of(), Map.of());
  }

  public static Message system(String content) {
    return new Message("system", content);
  }

  public static Message user(String content) {
    return new Message("user", content);
  }

  public static Message assistant(String content) {
    return new Message("assistant", content);
  }

  /** An assistant turn that calls tools; {@code content} may be null. */
  public static Message assistant(String content, List<Map<String, Object>> toolCalls) {
    return new Message("assistant", content, toolCalls, Map.of());
  }

  /** A tool result. */
  public static Message tool(String content) {
    return new Message("tool", content);
  }

  /** An OpenAI-style tool call, the shape Llama 3.1 and Qwen templates read. */
  public static Map<String, Object> toolCall(String name, Map<String, Object> arguments) {
    Map<String, Object> function = new LinkedHashMap<>();
    function.put("name", name);
    function.put("arguments", arguments);
    Map<String, Object> call = new LinkedHashMap<>();
    call.put("type", "function");
    call.put("function", function);
    return call;
  }

  /** This message with one more field, e.g. {@code with("tool_call_id", "call_1")}. */
  public Message with(String field, Object value) {
    Map<String, Object> more = new LinkedHashMap<>(fields);
    more.put(field, value);
    return new Message(role, content, toolCalls, more);
  }

  Map<String, Object> toTemplateValue() {
    Map<String, Object> dict = new LinkedHashMap<>();
    dict.put("role", role);
    dict.put("content", content);
    if (!toolCalls.isEmpty()) {
      dict.put("tool_calls", toolCalls);
    }
    dict.putAll(fields);
    return dict;
  }
}
