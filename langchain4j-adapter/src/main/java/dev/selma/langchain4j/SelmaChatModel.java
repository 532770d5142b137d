package dev.selma.langchain4j;

import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.selma.engine.generate.CancellationToken;
import dev.selma.engine.generate.GenerationListener;
import dev.selma.engine.generate.GenerationResult;

/**
 * A LangChain4j {@link ChatModel} running a local model on Selma's engine in this JVM. Thread-safe:
 * concurrent calls run as separate generations on the same loaded model.
 *
 * <p>{@link #chat} runs on the calling thread. Interrupting that thread stops the generation at the
 * next token; the partial answer comes back with {@code FinishReason.OTHER} and the interrupt flag
 * stays set.
 *
 * <pre>{@code
 * try (SelmaChatModel model = SelmaChatModel.builder()
 *     .modelPath(Path.of("model.gguf"))
 *     .maxOutputTokens(256)
 *     .build()) {
 *   String answer = model.chat("Hello");
 * }
 * }</pre>
 */
public class SelmaChatModel extends SelmaBaseChatModel implements ChatModel {

  protected SelmaChatModel(Builder builder) {
    super(builder);
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public ChatResponse doChat(ChatRequest request) {
    Prepared prepared = prepare(request);
    CancellationToken cancellation = new CancellationToken();
    Thread caller = Thread.currentThread();
    GenerationResult result = prepared.generate(new GenerationListener() {
      @Override
      public void onPrefillProgress(int done, int total, double tokensPerSecond) {
        if (caller.isInterrupted()) {
          cancellation.cancel();
        }
      }

      @Override
      public void onToken(int token, String text) {
        if (caller.isInterrupted()) {
          cancellation.cancel();
        }
      }
    }, cancellation);
    return prepared.response(result,
        prepared.toolFormat == null ? null : ToolCalls.parse(result.text(), prepared.toolFormat));
  }

  @Override
  public SelmaChatRequestParameters defaultRequestParameters() {
    return super.defaultRequestParameters();
  }

  /** Builds a {@link SelmaChatModel}; see {@link SelmaBaseChatModel.Builder} for the options. */
  public static class Builder extends SelmaBaseChatModel.Builder<Builder> {
    public SelmaChatModel build() {
      return new SelmaChatModel(this);
    }
  }
}
