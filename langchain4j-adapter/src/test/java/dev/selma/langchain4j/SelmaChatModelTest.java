package dev.selma.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.selma.engine.Engine;
import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.generate.CancellationToken;
import dev.selma.engine.generate.GenerationListener;
import dev.selma.engine.generate.SamplingParams;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.tokenizer.template.Message;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.helpers.AbstractLogger;

/** Request mapping, responses, tools and errors of {@link SelmaChatModel} on random-weight models. */
class SelmaChatModelTest {
  static Engine engine;
  static SelmaChatModel model;

  static final ToolSpecification WEATHER = ToolSpecification.builder()
      .name("get_weather")
      .description("The weather in a city")
      .parameters(JsonObjectSchema.builder().addStringProperty("city", "the city's name").required("city").build())
      .build();

  @BeforeAll
  static void load() throws IOException {
    engine = TestModels.load(TestModels.LLAMA31_TOOLS, 1024);
    model = SelmaChatModel.builder().engine(engine).maxOutputTokens(16).build();
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  private static ChatResponse chat(ChatRequestParameters p, ChatMessage... messages) {
    return model.chat(ChatRequest.builder().messages(messages).parameters(p).build());
  }

  private static ChatResponse chat(ChatRequestParameters p) {
    return chat(p, UserMessage.from("Tell me about the sea."));
  }

  /** The prompt Selma builds for a request, as text. */
  private static String prompt(SelmaBaseChatModel m, ChatRequest request) {
    int[] ids = m.prepare(request).generationRequest(new GenerationListener() {}, new CancellationToken()).prompt();
    return m.engine().tokenizer().decode(ids, false);
  }

  @Test
  void mapsEveryParameterToTheEngine() {
    SelmaChatRequestParameters p = SelmaChatRequestParameters.builder()
        .temperature(0.7).topK(40).topP(0.9).frequencyPenalty(0.5).presencePenalty(0.25)
        .minP(0.05).repetitionPenalty(1.1).seed(42L).build();
    assertEquals(new SamplingParams(0.7, 40, 0.9, 0.05, 1.1, 0.5, 0.25, 42), SelmaBaseChatModel.sampling(p));
    assertEquals(SamplingParams.GREEDY, SelmaBaseChatModel.sampling(ChatRequestParameters.builder().build()),
        "nothing set: greedy, nothing cut, no penalties");
    ChatRequestParameters hot = ChatRequestParameters.builder().temperature(1.0).build();
    assertNotEquals(SelmaBaseChatModel.sampling(hot).seed(), SelmaBaseChatModel.sampling(hot).seed(),
        "sampling without a seed draws a fresh one");
  }

  @Test
  void requestParametersOverrideTheDefaults() {
    SelmaChatModel m = SelmaChatModel.builder().engine(engine)
        .defaultRequestParameters(SelmaChatRequestParameters.builder().temperature(0.3).seed(5L).topK(3).build())
        .topK(7).build();
    SelmaChatRequestParameters d = m.defaultRequestParameters();
    assertEquals(engine.modelName(), d.modelName());
    assertEquals(0.3, d.temperature());
    assertEquals(5L, d.seed());
    assertEquals(7, d.topK(), "flat builder setters win over defaultRequestParameters");
    SelmaChatRequestParameters merged = d.overrideWith(SelmaChatRequestParameters.builder().seed(9L).build());
    assertEquals(9L, merged.seed());
    assertEquals(0.3, merged.temperature());
  }

  @Test
  void greedyByDefaultAndSeededSamplingRepeats() {
    String greedy = chat(ChatRequestParameters.builder().build()).aiMessage().text();
    assertEquals(greedy, chat(ChatRequestParameters.builder().build()).aiMessage().text());
    assertEquals(greedy, chat(ChatRequestParameters.builder().temperature(1.0).topK(1).build()).aiMessage().text(),
        "top-k 1 keeps only the most likely token");
    SelmaChatRequestParameters seeded = SelmaChatRequestParameters.builder().temperature(1.5).seed(7L).build();
    String sampled = chat(seeded).aiMessage().text();
    assertEquals(sampled, chat(seeded).aiMessage().text());
    assertNotEquals(sampled, chat(SelmaChatRequestParameters.builder().temperature(1.5).seed(8L).build())
        .aiMessage().text());
    assertNotEquals(greedy, sampled);
  }

  @Test
  void maxOutputTokensUsageAndMetadata() {
    ChatResponse r = chat(ChatRequestParameters.builder().maxOutputTokens(5).build(),
        SystemMessage.from("Be brief."), UserMessage.from("Hello"));
    int promptTokens = engine.encodeChat(List.of(Message.system("Be brief."), Message.user("Hello"))).length;
    assertEquals(promptTokens, r.tokenUsage().inputTokenCount());
    assertEquals(5, r.tokenUsage().outputTokenCount());
    assertEquals(promptTokens + 5, r.tokenUsage().totalTokenCount());
    assertEquals(FinishReason.LENGTH, r.finishReason());
    assertEquals(engine.modelName(), r.modelName());
    assertTrue(r.id().startsWith("selma-"));
    SelmaChatResponseMetadata m = (SelmaChatResponseMetadata) r.metadata();
    assertTrue(m.prefillNanos() > 0 && m.decodeNanos() > 0);
    assertEquals(0, m.cachedPromptTokens());
  }

  @Test
  void stopSequencesEndTheAnswer() {
    String full = chat(ChatRequestParameters.builder().maxOutputTokens(24).build()).aiMessage().text();
    String stop = full.substring(full.length() / 2, full.length() / 2 + 2);
    ChatResponse r = chat(ChatRequestParameters.builder().maxOutputTokens(24).stopSequences(stop).build());
    assertEquals(full.substring(0, full.indexOf(stop)), r.aiMessage().text());
    assertEquals(FinishReason.STOP, r.finishReason());
  }

  @Test
  void attentionIsARequestParameter() {
    String dense = chat(ChatRequestParameters.builder().build()).aiMessage().text();
    // Select-and-merge whose top-k covers every block reads every key: exactly dense attention.
    AttentionConfig all = AttentionConfig.selectAndMerge(16, 64, 1, 1, 1);
    ChatResponse r = chat(SelmaChatRequestParameters.builder().attention(all).build());
    assertEquals(dense, r.aiMessage().text());
    SelmaChatModel selecting = SelmaChatModel.builder().engine(engine).maxOutputTokens(16).attention(all).build();
    assertEquals(all, selecting.defaultRequestParameters().attention());
    assertEquals(dense, selecting.chat(ChatRequest.builder().messages(UserMessage.from("Tell me about the sea."))
        .build()).aiMessage().text());
    InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> chat(SelmaChatRequestParameters
        .builder().attention(AttentionConfig.dense().withPositions(new AttentionConfig.SelfExtend(4, 4096)))
        .build()));
    assertTrue(e.getMessage().contains("self_extend.window"), e.getMessage());
  }

  @Test
  void invalidValuesNameTheParameter() {
    assertInvalid(ChatRequestParameters.builder().temperature(-1.0).build(), "temperature");
    assertInvalid(ChatRequestParameters.builder().topP(1.5).build(), "top_p");
    assertInvalid(ChatRequestParameters.builder().topK(-2).build(), "top_k");
    assertInvalid(ChatRequestParameters.builder().frequencyPenalty(3.0).build(), "frequency_penalty");
    assertInvalid(ChatRequestParameters.builder().presencePenalty(-3.0).build(), "presence_penalty");
    assertInvalid(ChatRequestParameters.builder().maxOutputTokens(0).build(), "maxOutputTokens");
    assertInvalid(SelmaChatRequestParameters.builder().minP(1.0).build(), "min_p");
    assertInvalid(SelmaChatRequestParameters.builder().repetitionPenalty(0.0).build(), "repetition_penalty");
    InvalidRequestException e = assertThrows(InvalidRequestException.class,
        () -> SelmaChatModel.builder().engine(engine).temperature(-1.0).build());
    assertTrue(e.getMessage().contains("temperature"), e.getMessage());
    IllegalArgumentException kv = assertThrows(IllegalArgumentException.class,
        () -> SelmaChatModel.builder().engine(engine).kvPrecision(KvPrecision.FP8).build());
    assertTrue(kv.getMessage().contains("kvPrecision configure a model loaded from modelPath"), kv.getMessage());
  }

  private static void assertInvalid(ChatRequestParameters p, String name) {
    InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> chat(p));
    assertTrue(e.getMessage().contains(name), e.getMessage());
  }

  @Test
  void unsupportedFeaturesFailClearly() {
    UnsupportedFeatureException name = assertThrows(UnsupportedFeatureException.class,
        () -> chat(ChatRequestParameters.builder().modelName("gpt-4o").build()));
    assertTrue(name.getMessage().contains("modelName 'gpt-4o' is not supported"), name.getMessage());
    assertEquals(engine.modelName(), chat(ChatRequestParameters.builder().modelName(engine.modelName())
        .maxOutputTokens(1).build()).modelName(), "the model's own name is accepted");
    assertThrows(UnsupportedFeatureException.class, () -> chat(ChatRequestParameters.builder()
        .toolSpecifications(WEATHER).toolChoice(ToolChoice.REQUIRED).build()));
  }

  @Test
  void promptsLongerThanTheContextAreInvalidRequests() throws IOException {
    try (Engine tiny = TestModels.load(TestModels.LLAMA31_TOOLS, 16)) {
      SelmaChatModel m = SelmaChatModel.builder().engine(tiny).build();
      InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> m.chat("Hello there"));
      assertTrue(e.getMessage().contains("holds at most 16"), e.getMessage());
    }
  }

  @Test
  void toolsAreRenderedThroughTheTemplate() {
    ChatRequest withTools = ChatRequest.builder().messages(UserMessage.from("Weather in Paris?"))
        .toolSpecifications(WEATHER).build();
    String p = prompt(model, withTools);
    assertTrue(p.contains("Environment: ipython"), p);
    assertTrue(p.contains("\"name\": \"get_weather\""), p);
    assertTrue(p.contains("\"description\": \"the city's name\""), p);
    assertTrue(p.contains("\"required\": [\n"), p);
    ChatRequest none = withTools.toBuilder().parameters(ChatRequestParameters.builder().toolSpecifications(WEATHER)
        .toolChoice(ToolChoice.NONE).build()).build();
    assertFalse(prompt(model, none).contains("get_weather"), "ToolChoice.NONE shows the model no tools");
    assertEquals(SelmaBaseChatModel.ToolSupport.class, model.toolSupport().getClass());
    assertEquals(ToolCalls.Format.JSON, model.toolSupport().format());
  }

  @Test
  void toolCallsAndResultsInTheHistoryAreRendered() {
    ToolExecutionRequest call = ToolExecutionRequest.builder().id("call_1").name("get_weather")
        .arguments("{\"city\":\"Paris\"}").build();
    ChatRequest request = ChatRequest.builder().messages(
            UserMessage.from("Weather in Paris?"),
            AiMessage.from(call),
            ToolExecutionResultMessage.from(call, "sunny, 21 C"))
        .toolSpecifications(WEATHER).build();
    String p = prompt(model, request);
    assertTrue(p.contains("<|start_header_id|>assistant<|end_header_id|>\n\n"
        + "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"), p);
    // Meta's template writes a tool result with tojson (a string is iterable in Jinja), so it is quoted.
    assertTrue(p.contains("<|start_header_id|>ipython<|end_header_id|>\n\n\"sunny, 21 C\"<|eot_id|>"), p);
    assertTrue(p.endsWith("<|start_header_id|>assistant<|end_header_id|>\n\n"), p);
  }

  @Test
  void qwenTemplatesTakeToolsInTags() throws IOException {
    try (Engine qwen = TestModels.load(TestModels.QWEN_TOOLS, 1024)) {
      SelmaChatModel m = SelmaChatModel.builder().engine(qwen).build();
      assertEquals(ToolCalls.Format.TAGGED, m.toolSupport().format());
      String p = prompt(m, ChatRequest.builder().messages(UserMessage.from("Weather?")).toolSpecifications(WEATHER)
          .build());
      assertTrue(p.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""), p);
    }
  }

  @Test
  void modelsWithoutToolSupportSayWhy() throws IOException {
    try (Engine mistral = TestModels.load(TestModels.MISTRAL_NO_TOOLS, 1024)) {
      SelmaChatModel m = SelmaChatModel.builder().engine(mistral).maxOutputTokens(4).build();
      UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class, () -> m.chat(
          ChatRequest.builder().messages(UserMessage.from("Weather?")).toolSpecifications(WEATHER).build()));
      assertEquals("tools are not supported by model '" + mistral.modelName() + "': its chat template does not "
          + "render tools (tools requested: [get_weather])", e.getMessage());
      assertThrows(UnsupportedFeatureException.class,
          () -> SelmaChatModel.builder().engine(mistral).defaultRequestParameters(
              ChatRequestParameters.builder().toolSpecifications(WEATHER).build()).build(),
          "default tools are checked when the model is built");
      assertEquals(4, m.chat(ChatRequest.builder().messages(UserMessage.from("Hello")).build()).tokenUsage()
          .outputTokenCount(), "without tools the model chats");
    }
  }

  @Test
  void anInterruptedCallerStopsTheGeneration() {
    Thread.currentThread().interrupt();
    try {
      ChatResponse r = chat(ChatRequestParameters.builder().maxOutputTokens(200).build());
      assertEquals(FinishReason.OTHER, r.finishReason());
      assertTrue(r.tokenUsage().outputTokenCount() < 200);
      assertTrue(Thread.currentThread().isInterrupted(), "the interrupt stays set");
    } finally {
      Thread.interrupted();
    }
  }

  @Test
  void logsRequestsAndResponsesWhenAsked() {
    List<String> lines = new ArrayList<>();
    SelmaChatModel m = SelmaChatModel.builder().engine(engine).maxOutputTokens(3).logRequests(true)
        .logResponses(true).logger(new ListLogger(lines)).build();
    ChatResponse r = m.chat(ChatRequest.builder().messages(UserMessage.from("Hello")).build());
    assertEquals(2, lines.size(), lines.toString());
    assertTrue(lines.get(0).startsWith("INFO Selma request: ") && lines.get(0).contains("user<|end_header_id|>"
        + "\n\nHello<|eot_id|>"), lines.get(0));
    assertTrue(lines.get(1).contains(r.id()), lines.get(1));
    SelmaChatModel quiet = SelmaChatModel.builder().engine(engine).maxOutputTokens(3)
        .logger(new ListLogger(lines)).build();
    quiet.chat("Hello");
    assertEquals(2, lines.size(), "nothing is logged unless asked");
  }

  /** An SLF4J logger that keeps formatted lines. */
  static final class ListLogger extends AbstractLogger {
    private final List<String> lines;

    ListLogger(List<String> lines) {
      this.lines = lines;
      this.name = "test";
    }

    @Override
    protected String getFullyQualifiedCallerName() {
      return null;
    }

    @Override
    protected void handleNormalizedLoggingCall(Level level, Marker marker, String pattern, Object[] args,
        Throwable t) {
      lines.add(level + " " + org.slf4j.helpers.MessageFormatter.basicArrayFormat(pattern, args));
    }

    @Override
    public boolean isTraceEnabled() {
      return true;
    }

    @Override
    public boolean isTraceEnabled(Marker marker) {
      return true;
    }

    @Override
    public boolean isDebugEnabled() {
      return true;
    }

    @Override
    public boolean isDebugEnabled(Marker marker) {
      return true;
    }

    @Override
    public boolean isInfoEnabled() {
      return true;
    }

    @Override
    public boolean isInfoEnabled(Marker marker) {
      return true;
    }

    @Override
    public boolean isWarnEnabled() {
      return true;
    }

    @Override
    public boolean isWarnEnabled(Marker marker) {
      return true;
    }

    @Override
    public boolean isErrorEnabled() {
      return true;
    }

    @Override
    public boolean isErrorEnabled(Marker marker) {
      return true;
    }
  }
}
