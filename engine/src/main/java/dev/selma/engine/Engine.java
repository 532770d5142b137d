package dev.selma.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionProfile;
import dev.selma.engine.backend.Backend;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.backend.cuda.BackendSelection;
import dev.selma.engine.backend.cuda.CudaAvailability;
import dev.selma.engine.backend.cuda.CudaBackend;
import dev.selma.engine.backend.cuda.CudaOptions;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.Generator;
import dev.selma.engine.kv.CacheStats;
import dev.selma.engine.kv.ModelFingerprint;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.PrefixCache;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelFormatException;
import dev.selma.engine.model.ModelLoader;
import dev.selma.engine.model.RopeScaling;
import dev.selma.engine.tokenizer.StreamingDecoder;
import dev.selma.engine.tokenizer.Tokenizer;
import dev.selma.engine.tokenizer.template.ChatTemplate;
import dev.selma.engine.tokenizer.template.Message;
import dev.selma.engine.tokenizer.template.TemplateException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * A loaded model ready to generate: files, tokenizer, backend and forward pass. This is what the Solr
 * plugin, the LangChain4j adapter and the command line use. Thread-safe: concurrent {@link #generate}
 * calls each run on their own sequence; they share keys and values of common prompt prefixes through
 * the prefix cache ({@link EngineOptions#cache()}).
 */
public final class Engine implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(Engine.class.getName());

  private final EngineOptions options;
  private final ModelFiles files;
  private final Tokenizer tokenizer;
  private final Backend backend;
  private final Llama model;
  /** Null when off. */
  private final PrefixCache prefixCache;
  private final int contextLength;
  /** Prompt tokens a forward step takes: the options' or the backend's default. */
  private final int prefillChunk;
  private final int[] eosIds;
  private final String name;
  /** The model's chat template, or null (then {@link #templateProblem} says why). */
  private final ChatTemplate chatTemplate;
  private final String templateProblem;
  private final AttentionProfile profile;

  private Engine(EngineOptions options, ModelFiles files, Tokenizer tokenizer, Backend backend,
      PrefixCache prefixCache, AttentionProfile profile, int[] eosIds, String name) {
    this.options = options;
    this.files = files;
    this.tokenizer = tokenizer;
    this.backend = backend;
    this.model = new Llama(files.config(), files.weights(), backend);
    this.prefixCache = prefixCache;
    this.profile = profile;
    this.contextLength = options.contextLength() > 0 ? options.contextLength() : files.config().maxPositionEmbeddings();
    this.prefillChunk = options.prefillChunk() > 0 ? options.prefillChunk()
        : backend instanceof CudaBackend ? EngineOptions.GPU_PREFILL_CHUNK : EngineOptions.CPU_PREFILL_CHUNK;
    this.eosIds = eosIds;
    this.name = name;
    ChatTemplate template = null;
    String problem = "the model has no chat template";
    if (tokenizer.chatTemplate().isPresent()) {
      try {
        template = ChatTemplate.parse(tokenizer.chatTemplate().get());
      } catch (TemplateException e) {
        // A model whose template Selma cannot read still serves plain-text prompts.
        problem = "the model's chat template cannot be used: " + e.getMessage();
        LOG.log(System.Logger.Level.WARNING, "Selma: " + name + ": " + problem);
      }
    }
    this.chatTemplate = template;
    this.templateProblem = problem;
  }

  /**
   * Loads a GGUF file or Hugging Face folder with its tokenizer.
   *
   * @throws ModelFormatException if the model or its tokenizer cannot be used, naming file and problem
   */
  public static Engine load(EngineOptions options) throws IOException {
    ModelFiles files = ModelLoader.open(options.model());
    try {
      Tokenizer tokenizer;
      int[] eos;
      String name;
      if (files.format() == ModelFiles.Format.GGUF) {
        tokenizer = Tokenizer.fromGguf(files.ggufMetadata());
        eos = tokenizer.eosIds();
        name = files.ggufMetadata().getString("general.name", fileName(options.model()));
      } else {
        tokenizer = Tokenizer.fromHuggingFace(files.path());
        eos = union(tokenizer.eosIds(), generationConfigEos(files.path()));
        name = fileName(options.model());
      }
      if (tokenizer.vocabSize() > files.config().vocabSize()) {
        throw new ModelFormatException(options.model(), "tokenizer", "the tokenizer has " + tokenizer.vocabSize()
            + " tokens but the model's embedding only " + files.config().vocabSize());
      }
      if (options.attention() != null) {
        options.attention().validateFor(files.config());
      }
      AttentionProfile profile = files.format() == ModelFiles.Format.GGUF
          ? AttentionProfile.fromGguf(files.ggufMetadata(), files.config())
          : AttentionProfile.dense(files.config());
      Backend backend = backend(options, name);
      try {
        PrefixCache prefixCache = prefixCache(options, files, backend, name);
        return new Engine(options, files, tokenizer, backend, prefixCache, profile, eos, name);
      } catch (IOException | RuntimeException e) {
        backend.close();
        throw e;
      }
    } catch (IOException | RuntimeException e) {
      files.close();
      throw e;
    }
  }

  /** The prefix cache the options ask for, or null. */
  private static PrefixCache prefixCache(EngineOptions options, ModelFiles files, Backend backend, String name)
      throws IOException {
    if (!options.cache().enabled()) {
      return null;
    }
    if (files.config().ropeScaling().type() == RopeScaling.Type.DYNAMIC) {
      // Dynamic scaling changes RoPE with the length reached at each chunk, so a token's keys and
      // values depend on where chunks started: a cached page would not be exactly what a request
      // would compute.
      LOG.log(System.Logger.Level.INFO, "Selma: " + name + " uses dynamic RoPE scaling; prefix cache off");
      return null;
    }
    CacheOptions cache = options.cache();
    if (backend instanceof CudaBackend && cache.pageTokens() != CudaBackend.KV_PAGE_TOKENS) {
      LOG.log(System.Logger.Level.INFO, "Selma: " + name + ": the CUDA backend's KV pages hold "
          + CudaBackend.KV_PAGE_TOKENS + " tokens; the prefix cache uses that instead of " + cache.pageTokens());
      cache = cache.withPageTokens(CudaBackend.KV_PAGE_TOKENS);
    }
    return new PrefixCache(cache, ModelFingerprint.of(files.config(), files.weights()));
  }

  /** The configured backend (AUTO: CUDA when the GPU is usable), with one log line saying which and why. */
  private static Backend backend(EngineOptions options, String model) {
    int threads = options.threads() == 0 ? Runtime.getRuntime().availableProcessors() : options.threads();
    BackendSelection choice = BackendSelection.decide(options.backend(),
        options.backend() == EngineOptions.BackendChoice.CPU ? null : CudaAvailability.probe());
    Backend backend;
    String why = choice.reason();
    try {
      backend = choice.cuda() ? CudaBackend.open(CudaOptions.defaults().withKvPrecision(options.kvPrecision()))
          : new CpuBackend(threads, options.cache().pageTokens(), options.kvPrecision());
    } catch (RuntimeException | LinkageError e) {
      if (options.backend() != EngineOptions.BackendChoice.AUTO) {
        throw e;
      }
      backend = new CpuBackend(threads, options.cache().pageTokens(), options.kvPrecision());
      why = "auto: the CUDA backend did not start: " + e.getMessage();
    }
    LOG.log(System.Logger.Level.INFO, "Selma: " + model + " on " + backend.name() + " (" + why + ")");
    return backend;
  }

  private static String fileName(Path p) {
    String f = p.getFileName().toString();
    return f.endsWith(".gguf") ? f.substring(0, f.length() - 5) : f;
  }

  /** End-of-sequence ids from {@code generation_config.json} (an id or a list), if the folder has one. */
  private static int[] generationConfigEos(Path folder) throws ModelFormatException {
    Path file = folder.resolve("generation_config.json");
    if (!Files.isRegularFile(file)) {
      return new int[0];
    }
    try {
      JsonNode eos = new ObjectMapper().readTree(file.toFile()).get("eos_token_id");
      if (eos == null || eos.isNull()) {
        return new int[0];
      }
      if (eos.isInt()) {
        return new int[] {eos.asInt()};
      }
      if (eos.isArray()) {
        int[] ids = new int[eos.size()];
        for (int i = 0; i < ids.length; i++) {
          if (!eos.get(i).isInt()) {
            throw new ModelFormatException(file, "eos_token_id", "expected integers, found " + eos.get(i));
          }
          ids[i] = eos.get(i).asInt();
        }
        return ids;
      }
      throw new ModelFormatException(file, "eos_token_id", "expected an integer or a list, found " + eos);
    } catch (IOException e) {
      throw e instanceof ModelFormatException m ? m : new ModelFormatException(file, null, e.getMessage(), e);
    }
  }

  private static int[] union(int[] a, int[] b) {
    return IntStream.concat(Arrays.stream(a), Arrays.stream(b)).distinct().toArray();
  }

  public String modelName() {
    return name;
  }

  public ModelConfig config() {
    return files.config();
  }

  public Tokenizer tokenizer() {
    return tokenizer;
  }

  public String backendName() {
    return backend.name();
  }

  /** The most tokens one generation may hold, prompt and answer together. */
  public int contextLength() {
    return contextLength;
  }

  /** Prompt tokens a forward step takes: the options' chunk, or the backend's default. */
  public int prefillChunk() {
    return prefillChunk;
  }

  /** The ids that end a generation by default. */
  public int[] eosIds() {
    return eosIds.clone();
  }

  public boolean hasChatTemplate() {
    return chatTemplate != null;
  }

  /**
   * Renders a conversation through the model's chat template, as {@code transformers}'
   * {@code apply_chat_template} does ({@code bos_token} and {@code eos_token} are provided).
   *
   * @param extraVariables more template variables, e.g. {@code tools}
   * @throws IllegalStateException if the model has no usable chat template
   * @throws TemplateException if the template rejects the conversation
   */
  public String renderChat(List<Message> messages, boolean addGenerationPrompt, Map<String, ?> extraVariables) {
    if (chatTemplate == null) {
      throw new IllegalStateException(templateProblem);
    }
    Map<String, Object> vars = new LinkedHashMap<>();
    vars.put("bos_token", tokenizer.bosToken().orElse(""));
    vars.put("eos_token", tokenizer.eosToken().orElse(""));
    vars.putAll(extraVariables);
    return chatTemplate.render(messages, addGenerationPrompt, vars);
  }

  /** The token ids of a conversation ready for the assistant's answer. */
  public int[] encodeChat(List<Message> messages) {
    // The template writes the special tokens itself (e.g. {{ bos_token }}), so none are added here.
    return tokenizer.encode(renderChat(messages, true, Map.of()), false);
  }

  /** {@link #encodeChat(List)} of an optional system message and one user message. */
  public int[] encodeChat(String system, String user) {
    List<Message> messages = new ArrayList<>();
    if (system != null) {
      messages.add(Message.system(system));
    }
    messages.add(Message.user(user));
    return encodeChat(messages);
  }

  /**
   * How a prompt of {@code tokens} tokens attends by default: the engine's configured attention, or
   * else the model's profile (dense within its trained window, its recommendation beyond).
   */
  public AttentionConfig attentionFor(int tokens) {
    return options.attention() != null ? options.attention() : profile.forLength(tokens);
  }

  public AttentionProfile attentionProfile() {
    return profile;
  }

  /**
   * A request builder for {@code prompt} that stops at the model's end-of-sequence tokens and attends
   * as the engine's options say.
   */
  public GenerationRequest.Builder request(int[] prompt) {
    return GenerationRequest.builder(prompt).stopTokens(eosIds).attention(attentionFor(prompt.length));
  }

  /**
   * Runs a generation on a fresh sequence of {@link #contextLength()} tokens, starting from the
   * longest cached prefix of the prompt.
   */
  public GenerationResult generate(GenerationRequest request) {
    try (Sequence seq = model.newSequence(contextLength, prefillChunk)) {
      if (prefixCache != null) {
        seq.prefixCache(prefixCache);
      }
      StreamingDecoder decoder = tokenizer.streamingDecoder(true);
      return Generator.generate(seq, request, decoder::next);
    }
  }

  /** The prefix cache's counters and contents, for metrics; empty when the cache is off. */
  public Optional<CacheStats> cacheStats() {
    return Optional.ofNullable(prefixCache).map(PrefixCache::stats);
  }

  @Override
  public void close() {
    if (prefixCache != null) {
      prefixCache.close();
    }
    backend.close();
    files.close();
  }
}
