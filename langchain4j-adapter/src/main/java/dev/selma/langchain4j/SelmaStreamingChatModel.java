package dev.selma.langchain4j;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.CompleteToolCall;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import dev.selma.engine.generate.CancellationToken;
import dev.selma.engine.generate.FinishReason;
import dev.selma.engine.generate.GenerationListener;
import dev.selma.engine.generate.GenerationResult;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A LangChain4j {@link StreamingChatModel} running a local model on Selma's engine in this JVM.
 *
 * <p>{@code chat(request, handler)} checks the request on the caller's thread (unsupported features
 * throw there, as LangChain4j expects) and generates on a worker thread, where every handler call
 * happens: partial answers as text becomes complete (never half a UTF-8 character, and never text that
 * may still turn into a stop sequence or a tool call), then once either {@code onCompleteResponse} or
 * {@code onError}. The partial answers concatenate to the final text.
 *
 * <p><b>Cancelling:</b> call {@code cancel()} on the {@link StreamingHandle} of the
 * {@link PartialResponseContext} passed to
 * {@link StreamingChatResponseHandler#onPartialResponse(PartialResponse, PartialResponseContext)}. The
 * engine stops before its next token; no further partial answer and neither {@code onCompleteResponse}
 * nor {@code onError} follow.
 *
 * <p>An exception thrown by the handler's {@code onPartialResponse} or {@code onCompleteResponse} is
 * passed to its {@code onError}; the generation goes on. Exceptions from {@code onError} are logged
 * and ignored.
 */
public class SelmaStreamingChatModel extends SelmaBaseChatModel implements StreamingChatModel {
  private static final Logger LOG = LoggerFactory.getLogger(SelmaStreamingChatModel.class);
  private static final AtomicInteger THREADS = new AtomicInteger();

  /** Daemon worker threads shared by every streaming model without an executor of its own. */
  private static final ExecutorService WORKERS = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "selma-stream-" + THREADS.incrementAndGet());
    t.setDaemon(true);
    return t;
  });

  private final Executor executor;

  protected SelmaStreamingChatModel(Builder builder) {
    super(builder);
    executor = builder.executor != null ? builder.executor : WORKERS;
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public SelmaChatRequestParameters defaultRequestParameters() {
    return super.defaultRequestParameters();
  }

  @Override
  public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
    Prepared prepared = prepare(request);
    Handle handle = new Handle();
    try {
      executor.execute(() -> run(prepared, handler, handle));
    } catch (RejectedExecutionException e) {
      error(handler, e);
    }
  }

  private void run(Prepared prepared, StreamingChatResponseHandler handler, Handle handle) {
    Stream stream = new Stream(prepared.toolFormat, handler, handle);
    GenerationResult result;
    try {
      result = prepared.generate(stream, handle.token);
    } catch (RuntimeException | Error e) {
      if (!handle.isCancelled()) {
        error(handler, e);
      }
      return;
    }
    if (result.finishReason() == FinishReason.CANCELLED || handle.isCancelled()) {
      return;
    }
    ChatResponse response;
    try {
      ToolCalls.Parsed parsed = prepared.toolFormat == null ? null : ToolCalls.parse(result.text(),
          prepared.toolFormat);
      String text = parsed != null && !parsed.calls().isEmpty() ? (parsed.text() == null ? "" : parsed.text())
          : result.text();
      stream.finish(text);
      response = prepared.response(result, parsed);
      if (parsed != null) {
        for (int i = 0; i < parsed.calls().size(); i++) {
          handler.onCompleteToolCall(new CompleteToolCall(i, parsed.calls().get(i)));
        }
      }
    } catch (RuntimeException | Error e) {
      error(handler, e);
      return;
    }
    try {
      handler.onCompleteResponse(response);
    } catch (RuntimeException e) {
      error(handler, e);
    }
  }

  private static void error(StreamingChatResponseHandler handler, Throwable e) {
    try {
      handler.onError(e);
    } catch (RuntimeException ignored) {
      LOG.warn("Selma: the streaming handler's onError threw; ignored", ignored);
    }
  }

  /** The handle a handler cancels with; it cancels the engine's generation. */
  private static final class Handle implements StreamingHandle {
    final CancellationToken token = new CancellationToken();

    @Override
    public void cancel() {
      token.cancel();
    }

    @Override
    public boolean isCancelled() {
      return token.isCancelled();
    }
  }

  /**
   * Turns the engine's token texts into partial answers: everything while no tools are offered;
   * with tools, text is held back while it may be the start of a tool call.
   */
  private static final class Stream implements GenerationListener {
    private final ToolCalls.Format toolFormat;
    private final StreamingChatResponseHandler handler;
    private final Handle handle;
    private final StringBuilder received = new StringBuilder();
    private int sent;

    Stream(ToolCalls.Format toolFormat, StreamingChatResponseHandler handler, Handle handle) {
      this.toolFormat = toolFormat;
      this.handler = handler;
      this.handle = handle;
    }

    @Override
    public void onToken(int token, String text) {
      if (text.isEmpty()) {
        return;
      }
      received.append(text);
      int upTo = toolFormat == null ? received.length() : ToolCalls.streamable(received.toString(), toolFormat);
      emit(upTo);
    }

    /** Sends what is left of the final text (held-back text, or stop-sequence look-ahead that was not one). */
    void finish(String text) {
      if (!text.startsWith(received.substring(0, sent))) {
        throw new IllegalStateException("Selma: streamed text is not a prefix of the answer");
      }
      received.setLength(0);
      received.append(text);
      emit(text.length());
    }

    private void emit(int upTo) {
      if (upTo <= sent || handle.isCancelled()) {
        return;
      }
      String piece = received.substring(sent, upTo);
      sent = upTo;
      try {
        handler.onPartialResponse(new PartialResponse(piece), new PartialResponseContext(handle));
      } catch (RuntimeException e) {
        error(handler, e);
      }
    }
  }

  /** Builds a {@link SelmaStreamingChatModel}; see {@link SelmaBaseChatModel.Builder} for the options. */
  public static class Builder extends SelmaBaseChatModel.Builder<Builder> {
    private Executor executor;

    /**
     * Runs generations (default: a shared pool of daemon threads, one per concurrent request). A
     * given executor is not shut down by {@code close()}.
     */
    public Builder executor(Executor executor) {
      this.executor = executor;
      return this;
    }

    public SelmaStreamingChatModel build() {
      return new SelmaStreamingChatModel(this);
    }
  }
}
