package dev.selma.langchain4j;

import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.generate.CancellationToken;
import dev.selma.engine.generate.GenerationListener;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.SamplingParams;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.tokenizer.template.Message;
import dev.selma.engine.tokenizer.template.TemplateException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What {@link SelmaChatModel} and {@link SelmaStreamingChatModel} share: the engine, default request
 * parameters, listeners, logging, and the mapping of LangChain4j requests onto engine generations.
 */
public abstract class SelmaBaseChatModel implements AutoCloseable {
  private static final SecureRandom SEEDS = new SecureRandom();
  private static final String PROBE_TOOL = "selma_tool_support_probe";

  private final Engine engine;
  private final boolean ownsEngine;
  private final SelmaChatRequestParameters defaults;
  private final List<ChatModelListener> listeners;
  private final boolean logRequests;
  private final boolean logResponses;
  private final Logger log;
  private final GenerationListener generationListener;
  private volatile ToolSupport toolSupport;

  /** Whether and how the model's chat template takes tools; {@code reason} says why not. */
  record ToolSupport(boolean supported, ToolCalls.Format format, String reason) {}

  protected SelmaBaseChatModel(Builder<?> b) {
    if ((b.engine == null) == (b.modelPath == null)) {
      throw new IllegalArgumentException(b.engine == null
          ? "a model is required: set modelPath (a GGUF file or Hugging Face folder) or engine"
          : "set either modelPath or engine, not both");
    }
    if (b.engine != null) {
      if (b.backend != null || b.threads != null || b.contextLength != null || b.prefillChunk != null
          || b.kvPrecision != null) {
        throw new IllegalArgumentException("backend, threads, contextLength, prefillChunk and kvPrecision configure "
            + "a model loaded from modelPath; a given engine was configured when it was loaded");
      }
      engine = b.engine;
      ownsEngine = false;
    } else {
      EngineOptions o = EngineOptions.of(b.modelPath);
      if (b.backend != null) {
        o = o.withBackend(b.backend);
      }
      if (b.threads != null) {
        o = o.withThreads(b.threads);
      }
      if (b.contextLength != null) {
        o = o.withContextLength(b.contextLength);
      }
      if (b.prefillChunk != null) {
        o = o.withPrefillChunk(b.prefillChunk);
      }
      if (b.kvPrecision != null) {
        o = o.withKvPrecision(b.kvPrecision);
      }
      try {
        engine = Engine.load(o);
      } catch (IOException e) {
        throw new UncheckedIOException("Selma cannot load the model " + b.modelPath + ": " + e.getMessage(), e);
      }
      ownsEngine = true;
    }
    try {
      SelmaChatRequestParameters.Builder p = SelmaChatRequestParameters.builder().modelName(engine.modelName());
      if (b.defaultRequestParameters != null) {
        p.overrideWith(b.defaultRequestParameters);
      }
      p.overrideWith(SelmaChatRequestParameters.builder()
          .temperature(b.temperature).topP(b.topP).topK(b.topK)
          .frequencyPenalty(b.frequencyPenalty).presencePenalty(b.presencePenalty)
          .maxOutputTokens(b.maxOutputTokens).stopSequences(b.stopSequences)
          .seed(b.seed).minP(b.minP).repetitionPenalty(b.repetitionPenalty).attention(b.attention)
          .build());
      defaults = p.build();
      validate(defaults);
      if (!defaults.toolSpecifications().isEmpty()) {
        toolFormat(defaults);
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
    listeners = b.listeners == null ? List.of() : List.copyOf(b.listeners);
    logRequests = Boolean.TRUE.equals(b.logRequests);
    logResponses = Boolean.TRUE.equals(b.logResponses);
    log = b.logger != null ? b.logger : LoggerFactory.getLogger(getClass());
    generationListener = b.generationListener;
  }

  /** The engine that runs this model; shared with other models built with {@code engine(...)}. */
  public Engine engine() {
    return engine;
  }

  /** The defaults every request starts from; {@code modelName} is the model's name. */
  public SelmaChatRequestParameters defaultRequestParameters() {
    return defaults;
  }

  public List<ChatModelListener> listeners() {
    return listeners;
  }

  public ModelProvider provider() {
    return ModelProvider.OTHER;
  }

  /** No JSON-schema response format: Selma has no constrained decoding yet. */
  public Set<Capability> supportedCapabilities() {
    return Set.of();
  }

  /** Closes the engine if this model loaded it; an engine given to the builder stays open. */
  @Override
  public void close() {
    if (ownsEngine) {
      engine.close();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  /**
   * A request checked and converted, ready to be rendered and run. Checking happens on the caller's
   * thread; rendering and tokenizing (long for long prompts) happen where the generation runs.
   */
  final class Prepared {
    final ChatRequest request;
    final List<Message> messages;
    final Map<String, Object> templateVariables;
    final ToolCalls.Format toolFormat;
    private final SamplingParams sampling;
    private final Integer maxOutputTokens;
    private final List<String> stopSequences;
    private final AttentionConfig attention;

    private Prepared(ChatRequest request) {
      ChatRequestParameters p = defaults.overrideWith(request.parameters());
      validate(p);
      this.request = request;
      this.messages = Conversation.messages(request.messages());
      boolean tools = !p.toolSpecifications().isEmpty() && p.toolChoice() != ToolChoice.NONE;
      this.toolFormat = tools ? toolFormat(p) : null;
      this.templateVariables = tools ? Map.of("tools", Conversation.tools(p.toolSpecifications())) : Map.of();
      this.sampling = sampling(p);
      this.maxOutputTokens = p.maxOutputTokens();
      this.stopSequences = p.stopSequences();
      this.attention = p instanceof SelmaChatRequestParameters s ? s.attention() : null;
    }

    /** Renders and tokenizes the conversation and builds the engine request. */
    GenerationRequest generationRequest(GenerationListener listener, CancellationToken cancellation) {
      String prompt;
      try {
        prompt = engine.renderChat(messages, true, templateVariables);
      } catch (IllegalStateException e) {
        throw new UnsupportedFeatureException("chat messages are not supported by model '" + engine.modelName()
            + "': " + e.getMessage());
      } catch (TemplateException e) {
        throw new InvalidRequestException("the chat template of model '" + engine.modelName()
            + "' rejects this conversation: " + e.getMessage(), e);
      }
      int[] ids = engine.tokenizer().encode(prompt, false);
      int room = engine.contextLength() - ids.length;
      if (room < 1) {
        throw new InvalidRequestException("the prompt has " + ids.length + " tokens but the context of model '"
            + engine.modelName() + "' holds at most " + engine.contextLength()
            + " (prompt and answer together)");
      }
      if (logRequests) {
        log.info("Selma request: {} prompt tokens, parameters {}, prompt:\n{}", ids.length, request.parameters(),
            prompt);
      }
      int maxNew = maxOutputTokens == null ? room : maxOutputTokens;
      GenerationListener observer = generationListener;
      GenerationListener both = observer == null ? listener : new GenerationListener() {
        @Override
        public void onPrefillProgress(int done, int total, double tokensPerSecond) {
          observer.onPrefillProgress(done, total, tokensPerSecond);
          listener.onPrefillProgress(done, total, tokensPerSecond);
        }

        @Override
        public void onToken(int token, String text) {
          observer.onToken(token, text);
          listener.onToken(token, text);
        }
      };
      GenerationRequest.Builder g = engine.request(ids).maxNewTokens(maxNew).sampling(sampling)
          .stopSequences(stopSequences).listener(both).cancellation(cancellation);
      if (attention != null) {
        g.attention(attention);
      }
      return g.build();
    }

    /** Runs the generation on the calling thread, mapping engine argument errors to LangChain4j's. */
    GenerationResult generate(GenerationListener listener, CancellationToken cancellation) {
      GenerationRequest g = generationRequest(listener, cancellation);
      try {
        return engine.generate(g);
      } catch (IllegalArgumentException e) {
        throw new InvalidRequestException(e.getMessage(), e);
      }
    }

    /** The LangChain4j response for a finished (not cancelled) generation. */
    ChatResponse response(GenerationResult r, ToolCalls.Parsed parsed) {
      AiMessage message;
      FinishReason finish = switch (r.finishReason()) {
        case STOP -> FinishReason.STOP;
        case LENGTH -> FinishReason.LENGTH;
        case CANCELLED -> FinishReason.OTHER;
      };
      if (parsed != null && !parsed.calls().isEmpty()) {
        message = AiMessage.builder().text(parsed.text()).toolExecutionRequests(parsed.calls()).build();
        finish = FinishReason.TOOL_EXECUTION;
      } else {
        message = AiMessage.from(r.text());
      }
      ChatResponse response = ChatResponse.builder()
          .aiMessage(message)
          .metadata(SelmaChatResponseMetadata.builder()
              .id("selma-" + UUID.randomUUID())
              .modelName(engine.modelName())
              .tokenUsage(new TokenUsage(r.usage().promptTokens(), r.usage().generatedTokens()))
              .finishReason(finish)
              .cachedPromptTokens(r.usage().cachedPromptTokens())
              .prefillNanos(r.usage().prefillNanos())
              .decodeNanos(r.usage().decodeNanos())
              .build())
          .build();
      if (logResponses) {
        log.info("Selma response: {}", response);
      }
      return response;
    }
  }

  Prepared prepare(ChatRequest request) {
    return new Prepared(request);
  }

  private void validate(ChatRequestParameters p) {
    if (p.modelName() != null && !p.modelName().equals(engine.modelName())) {
      throw new UnsupportedFeatureException("modelName '" + p.modelName() + "' is not supported: this Selma model "
          + "serves only '" + engine.modelName() + "' (the model file chooses the model)");
    }
    if (p.responseFormat() != null && p.responseFormat().type() == ResponseFormatType.JSON) {
      throw new UnsupportedFeatureException("JSON response format is not supported by Selma: it has no "
          + "constrained decoding yet");
    }
    if (p.toolChoice() == ToolChoice.REQUIRED) {
      throw new UnsupportedFeatureException("ToolChoice.REQUIRED is not supported by Selma: it cannot force a "
          + "model to call a tool (AUTO and NONE are supported)");
    }
    if (p.maxOutputTokens() != null && p.maxOutputTokens() < 1) {
      throw new InvalidRequestException("maxOutputTokens must be >= 1, got " + p.maxOutputTokens());
    }
    sampling(p);
    if (p instanceof SelmaChatRequestParameters s && s.attention() != null) {
      try {
        s.attention().validateFor(engine.config());
      } catch (IllegalArgumentException e) {
        throw new InvalidRequestException(e.getMessage(), e);
      }
    }
  }

  static SamplingParams sampling(ChatRequestParameters p) {
    SelmaChatRequestParameters s = p instanceof SelmaChatRequestParameters x ? x : null;
    double temperature = p.temperature() == null ? 0 : p.temperature();
    Long seed = s == null ? null : s.seed();
    try {
      return new SamplingParams(
          temperature,
          p.topK() == null ? 0 : p.topK(),
          p.topP() == null ? 1 : p.topP(),
          s == null || s.minP() == null ? 0 : s.minP(),
          s == null || s.repetitionPenalty() == null ? 1 : s.repetitionPenalty(),
          p.frequencyPenalty() == null ? 0 : p.frequencyPenalty(),
          p.presencePenalty() == null ? 0 : p.presencePenalty(),
          seed != null ? seed : temperature == 0 ? 0 : SEEDS.nextLong());
    } catch (IllegalArgumentException e) {
      throw new InvalidRequestException(e.getMessage(), e);
    }
  }

  private ToolCalls.Format toolFormat(ChatRequestParameters p) {
    ToolSupport support = toolSupport();
    if (!support.supported()) {
      List<String> names = p.toolSpecifications().stream().map(ToolSpecification::name).toList();
      throw new UnsupportedFeatureException("tools are not supported by model '" + engine.modelName() + "': "
          + support.reason() + " (tools requested: " + names + ")");
    }
    return support.format();
  }

  /**
   * Finds out once whether the chat template renders tools, by rendering a probe tool: a template that
   * ignores {@code tools} (Llama 3.0, Mistral v0.2, most others) cannot show the model any tool.
   */
  ToolSupport toolSupport() {
    ToolSupport s = toolSupport;
    if (s == null) {
      if (!engine.hasChatTemplate()) {
        s = new ToolSupport(false, null, "the model has no usable chat template");
      } else {
        try {
          String rendered = engine.renderChat(List.of(Message.user("?")), true,
              Map.of("tools", Conversation.tools(List.of(ToolSpecification.builder().name(PROBE_TOOL).build()))));
          s = !rendered.contains(PROBE_TOOL)
              ? new ToolSupport(false, null, "its chat template does not render tools")
              : new ToolSupport(true, rendered.contains(ToolCalls.OPEN) ? ToolCalls.Format.TAGGED
                  : ToolCalls.Format.JSON, null);
        } catch (RuntimeException e) {
          s = new ToolSupport(false, null, "its chat template fails with tools: " + e.getMessage());
        }
      }
      toolSupport = s;
    }
    return s;
  }

  // ---------------------------------------------------------------------------------------------
  // Builder

  /**
   * Options shared by both models. Sampling defaults: greedy (temperature 0) unless a temperature is
   * set; no top-k/top-p/min-p cut, no penalties; answers run until an end-of-sequence token, a stop
   * sequence or a full context unless {@code maxOutputTokens} is set.
   */
  @SuppressWarnings("unchecked")
  public abstract static class Builder<B extends Builder<B>> {
    private Path modelPath;
    private Engine engine;
    private EngineOptions.BackendChoice backend;
    private Integer threads;
    private Integer contextLength;
    private Integer prefillChunk;
    private KvPrecision kvPrecision;
    private ChatRequestParameters defaultRequestParameters;
    private Double temperature;
    private Double topP;
    private Integer topK;
    private Double frequencyPenalty;
    private Double presencePenalty;
    private Integer maxOutputTokens;
    private List<String> stopSequences;
    private Long seed;
    private Double minP;
    private Double repetitionPenalty;
    private AttentionConfig attention;
    private List<ChatModelListener> listeners;
    private Boolean logRequests;
    private Boolean logResponses;
    private Logger logger;
    private GenerationListener generationListener;

    protected B self() {
      return (B) this;
    }

    /** A GGUF file or a Hugging Face folder; the model loads it and closes it on {@code close()}. */
    public B modelPath(Path modelPath) {
      this.modelPath = modelPath;
      return self();
    }

    /** An engine already loaded, e.g. to share one model between a chat and a streaming model. */
    public B engine(Engine engine) {
      this.engine = engine;
      return self();
    }

    /** AUTO (default), CPU or CUDA. */
    public B backend(EngineOptions.BackendChoice backend) {
      this.backend = backend;
      return self();
    }

    /** CPU threads (default: every processor). */
    public B threads(Integer threads) {
      this.threads = threads;
      return self();
    }

    /** The most tokens of one request, prompt and answer together (default: the model's). */
    public B contextLength(Integer contextLength) {
      this.contextLength = contextLength;
      return self();
    }

    /** Prompt tokens per forward step (default: 4096 on a GPU, 512 on the CPU); bounds activation memory. */
    public B prefillChunk(Integer prefillChunk) {
      this.prefillChunk = prefillChunk;
      return self();
    }

    /** How KV pages store keys and values (default AUTO; FP8 halves their GPU memory). */
    public B kvPrecision(KvPrecision kvPrecision) {
      this.kvPrecision = kvPrecision;
      return self();
    }

    /**
     * Defaults for every request, a {@link SelmaChatRequestParameters} or LangChain4j's common ones;
     * the flat setters below override them.
     */
    public B defaultRequestParameters(ChatRequestParameters parameters) {
      this.defaultRequestParameters = parameters;
      return self();
    }

    public B temperature(Double temperature) {
      this.temperature = temperature;
      return self();
    }

    public B topP(Double topP) {
      this.topP = topP;
      return self();
    }

    public B topK(Integer topK) {
      this.topK = topK;
      return self();
    }

    public B frequencyPenalty(Double frequencyPenalty) {
      this.frequencyPenalty = frequencyPenalty;
      return self();
    }

    public B presencePenalty(Double presencePenalty) {
      this.presencePenalty = presencePenalty;
      return self();
    }

    public B maxOutputTokens(Integer maxOutputTokens) {
      this.maxOutputTokens = maxOutputTokens;
      return self();
    }

    public B stopSequences(List<String> stopSequences) {
      this.stopSequences = stopSequences;
      return self();
    }

    public B seed(Long seed) {
      this.seed = seed;
      return self();
    }

    public B minP(Double minP) {
      this.minP = minP;
      return self();
    }

    public B repetitionPenalty(Double repetitionPenalty) {
      this.repetitionPenalty = repetitionPenalty;
      return self();
    }

    /**
     * The default attention of requests: dense, or select-and-merge with original, re-indexed,
     * Self-Extend or CRD NTK positions (see {@link AttentionConfig}); unset keeps the engine's default.
     */
    public B attention(AttentionConfig attention) {
      this.attention = attention;
      return self();
    }

    public B listeners(List<ChatModelListener> listeners) {
      this.listeners = listeners;
      return self();
    }

    /** Logs each request's rendered prompt at INFO (can be very long for long-context prompts). */
    public B logRequests(Boolean logRequests) {
      this.logRequests = logRequests;
      return self();
    }

    /** Logs each response at INFO. */
    public B logResponses(Boolean logResponses) {
      this.logResponses = logResponses;
      return self();
    }

    /** The SLF4J logger for requests and responses (default: one named after the model class). */
    public B logger(Logger logger) {
      this.logger = logger;
      return self();
    }

    /**
     * Hears every generation as the engine runs it: prompt progress (useful for long prompts) and every
     * token. Called on the generating thread; keep it quick.
     */
    public B generationListener(GenerationListener generationListener) {
      this.generationListener = generationListener;
      return self();
    }
  }
}
