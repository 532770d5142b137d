package dev.selma.engine.cli;

import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import dev.selma.engine.generate.CancellationToken;
import dev.selma.engine.generate.GenerationListener;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.SamplingParams;
import dev.selma.engine.kv.KvPrecision;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "generate", description = "Continue a prompt; prints the text as it is generated.")
final class GenerateCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = {"-m", "--model"}, required = true, description = "GGUF file or Hugging Face folder")
  Path model;

  @ArgGroup(multiplicity = "1")
  PromptSource prompt;

  static final class PromptSource {
    @Option(names = {"-p", "--prompt"}, description = "the prompt text") String text;

    @Option(names = {"-f", "--prompt-file"}, description = "a UTF-8 file holding the prompt") Path file;
  }

  @Option(names = "--raw", description = "do not apply the model's chat template; the prompt is plain text")
  boolean raw;

  @Option(names = "--system", description = "system message (chat mode)") String system;

  @Option(names = {"-n", "--max-tokens"}, defaultValue = "256", description = "most tokens to generate (${DEFAULT-VALUE})")
  int maxTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (${DEFAULT-VALUE})") double temperature;

  @Option(names = "--top-k", defaultValue = "0", description = "0 = off") int topK;

  @Option(names = "--top-p", defaultValue = "1") double topP;

  @Option(names = "--min-p", defaultValue = "0") double minP;

  @Option(names = "--repeat-penalty", defaultValue = "1") double repeatPenalty;

  @Option(names = "--seed", defaultValue = "0") long seed;

  @Option(names = "--stop", description = "stop sequence (repeatable)") List<String> stops = List.of();

  @Option(names = {"-t", "--threads"}, defaultValue = "0", description = "CPU threads, 0 = all") int threads;

  @Option(names = {"-c", "--context"}, defaultValue = "0", description = "context length, 0 = the model's") int context;

  @Option(names = "--chunk", defaultValue = "0",
      description = "prefill chunk in tokens (0: the backend's, 4096 on a GPU and 512 on the CPU)") int chunk;

  @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu or cuda") String backend;

  @Option(names = "--kv-precision", defaultValue = "auto",
      description = "KV pages: auto (bf16 on the GPU, fp32 on the CPU) or fp8 (half the GPU memory)")
  String kvPrecision;

  @Mixin AttentionOptions attention = new AttentionOptions();

  @Mixin CacheCliOptions cache = new CacheCliOptions();

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
    String text = prompt.text != null ? prompt.text : Files.readString(prompt.file, StandardCharsets.UTF_8);
    EngineOptions options = new EngineOptions(model, Choices.backend(backend), threads, context, chunk,
        attention.toConfig(), cache.toOptions(), KvPrecision.parse(kvPrecision));
    SamplingParams sampling = new SamplingParams(temperature, topK, topP, minP, repeatPenalty, 0, 0, seed);
    try (Engine engine = Engine.load(options)) {
      err.println("model " + engine.modelName() + " on " + engine.backendName());
      int[] ids = raw ? engine.tokenizer().encode(text, true) : engine.encodeChat(system, text);
      CancellationToken cancel = new CancellationToken();
      Thread hook = new Thread(cancel::cancel);
      Runtime.getRuntime().addShutdownHook(hook);
      GenerationListener listener = new GenerationListener() {
        @Override
        public void onPrefillProgress(int done, int total, double tokensPerSecond) {
          if (total > 0) {
            err.printf(Locale.ROOT, "\rprefill %d/%d tokens (%.0f tokens/s)", done, total, tokensPerSecond);
            err.flush();
          }
        }

        @Override
        public void onToken(int token, String piece) {
          out.print(piece);
          out.flush();
        }
      };
      err.println();
      GenerationResult r = engine.generate(engine.request(ids).maxNewTokens(maxTokens).sampling(sampling)
          .stopSequences(stops).listener(listener).cancellation(cancel).build());
      out.println();
      err.printf(Locale.ROOT,
          "%nprompt %d tokens (%d from the KV cache), prefill %.1f tokens/s; generated %d tokens, %.2f tokens/s; %s%n",
          r.usage().promptTokens(), r.usage().cachedPromptTokens(), r.usage().prefillTokensPerSecond(),
          r.usage().generatedTokens(), r.usage().decodeTokensPerSecond(),
          r.finishReason().name().toLowerCase(Locale.ROOT));
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // Ctrl-C arrived: the hook already ran.
      }
      return 0;
    }
  }
}
