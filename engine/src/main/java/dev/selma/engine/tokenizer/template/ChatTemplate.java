package dev.selma.engine.tokenizer.template;

import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A model's Jinja chat template (GGUF {@code tokenizer.chat_template} or {@code
 * tokenizer_config.json}'s {@code chat_template}), rendered exactly as Hugging Face transformers'
 * {@code apply_chat_template(..., tokenize=False)} renders it: jinja2 with {@code trim_blocks} and
 * {@code lstrip_blocks}, the loop-control extension, the immutable sandbox, transformers' {@code
 * tojson}, {@code raise_exception} and {@code strftime_now}.
 *
 * <p>Parsing checks the whole template, including that every filter and test exists. A template is
 * immutable and may be rendered from many threads.
 */
public final class ChatTemplate {
  private final Source source;
  private final List<Node.Stmt> body;
  private final Clock clock;

  private ChatTemplate(Source source, List<Node.Stmt> body, Clock clock) {
    this.source = source;
    this.body = body;
    this.clock = clock;
  }

  /**
   * @throws TemplateException if the template is malformed or uses an unknown tag, filter or test
   */
  public static ChatTemplate parse(String template) {
    Source source = Source.of(Objects.requireNonNull(template, "template"));
    return new ChatTemplate(source, Parser.parse(source), Clock.systemDefaultZone());
  }

  /** The same template with the clock {@code strftime_now} reads (local time of its zone). */
  public ChatTemplate withClock(Clock clock) {
    return new ChatTemplate(source, body, Objects.requireNonNull(clock, "clock"));
  }

  /**
   * Renders a conversation. The template sees {@code messages}, {@code add_generation_prompt},
   * {@code tools} and {@code documents} (both None unless given), then every entry of {@code
   * extraVariables}: {@code bos_token}, {@code eos_token}, {@code tools} (a list of JSON-schema
   * maps), {@code date_string}, {@code enable_thinking}, ...
   *
   * @throws TemplateRaisedException if the template rejects the conversation with {@code
   *     raise_exception}
   * @throws TemplateException on any other error while rendering
   */
  public String render(List<Message> messages, boolean addGenerationPrompt, Map<String, ?> extraVariables) {
    List<Object> dicts = new ArrayList<>(messages.size());
    for (Message m : messages) {
      dicts.add(m.toTemplateValue());
    }
    Map<String, Object> variables = new LinkedHashMap<>();
    variables.put("messages", dicts);
    variables.put("tools", null);
    variables.put("documents", null);
    variables.put("add_generation_prompt", addGenerationPrompt);
    variables.putAll(extraVariables);
    return render(variables);
  }

  /** Renders with exactly these variables (values: strings, numbers, booleans, null, lists, maps). */
  public String render(Map<String, ?> variables) {
    return new Interpreter(source, clock).render(body, new LinkedHashMap<>(variables));
  }
}
