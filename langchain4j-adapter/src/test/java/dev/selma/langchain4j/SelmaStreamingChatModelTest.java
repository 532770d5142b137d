package dev.selma.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.listener.ChatModelErrorContext;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.listener.ChatModelRequestContext;
import dev.langchain4j.model.chat.listener.ChatModelResponseContext;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import dev.selma.engine.Engine;
import dev.selma.engine.generate.GenerationListener;
import java.io.IOException;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CopyOnWriteArraySet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Streaming: partial answers, completion, errors, handler exceptions and cancellation. */
class SelmaStreamingChatModelTest {
  static Engine engine;

  @BeforeAll
  static void load() throws IOException {
    engine = TestModels.load(TestModels.LLAMA31_TOOLS, 1024);
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  /** Records every handler call. */
  static class Recorder implements StreamingChatResponseHandler {
    final List<String> partials = new CopyOnWriteArrayList<>();
    final List<Throwable> errors = new CopyOnWriteArrayList<>();
    final AtomicInteger completions = new AtomicInteger();
    final Set<Thread> threads = new CopyOnWriteArraySet<>();
    final CompletableFuture<ChatResponse> done = new CompletableFuture<>();

    @Override
    public void onPartialResponse(PartialResponse partial, PartialResponseContext context) {
      threads.add(Thread.currentThread());
      partials.add(partial.text());
    }

    @Override
    public void onCompleteResponse(ChatResponse response) {
      threads.add(Thread.currentThread());
      completions.incrementAndGet();
      done.complete(response);
    }

    @Override
    public void onError(Throwable error) {
      threads.add(Thread.currentThread());
      errors.add(error);
      done.completeExceptionally(error);
    }

    ChatResponse await() throws Exception {
      return done.get(60, TimeUnit.SECONDS);
    }
  }

  @Test
  void partialAnswersAreWholeCharactersAndConcatenateToTheAnswer() throws Exception {
    List<Integer> tokens = new CopyOnWriteArrayList<>();
    SelmaStreamingChatModel streaming = SelmaStreamingChatModel.builder().engine(engine).maxOutputTokens(80)
        .generationListener(new GenerationListener() {
          @Override
          public void onToken(int token, String text) {
            tokens.add(token);
          }
        }).build();
    // Byte-level BPE models emit characters such as CJK and emoji in several byte tokens.
    ChatRequest request = ChatRequest.builder().messages(UserMessage.from("日本語で答えて 🌊 ünïcödé")).build();
    Recorder r = new Recorder();
    streaming.chat(request, r);
    ChatResponse response = r.await();
    String text = response.aiMessage().text();
    assertEquals(text, String.join("", r.partials));
    // Decoding all tokens at once gives the same text: no partial answer cut a UTF-8 sequence (a random
    // model may emit invalid byte sequences, which decode to U+FFFD either way).
    assertEquals(engine.tokenizer().decode(tokens.stream().mapToInt(Integer::intValue).toArray(), true), text);
    assertTrue(r.partials.size() > 1);
    for (String p : r.partials) {
      assertFalse(p.isEmpty());
      for (int i = 0; i < p.length(); i++) {
        char c = p.charAt(i);
        if (Character.isHighSurrogate(c)) {
          assertTrue(i + 1 < p.length() && Character.isLowSurrogate(p.charAt(++i)), "split surrogate pair");
        } else {
          assertFalse(Character.isLowSurrogate(c), "split surrogate pair");
        }
      }
    }
    Thread.sleep(100);
    assertEquals(1, r.completions.get());
    assertTrue(r.errors.isEmpty());
    assertEquals(1, r.threads.size());
    assertNotEquals(Thread.currentThread(), r.threads.iterator().next());
    assertEquals(80, response.tokenUsage().outputTokenCount());
    assertEquals(FinishReason.LENGTH, response.finishReason());
    SelmaChatModel blocking = SelmaChatModel.builder().engine(engine).maxOutputTokens(80).build();
    assertEquals(text, blocking.chat(request).aiMessage().text(), "streaming and blocking answer alike");
  }

  @Test
  void textHeldBackForAStopSequenceIsStreamedWhenItIsNoStop() throws Exception {
    SelmaChatModel blocking = SelmaChatModel.builder().engine(engine).maxOutputTokens(30).build();
    String full = blocking.chat("Tell me about the sea.");
    // A stop sequence that starts like the answer's last characters but never completes.
    String stop = full.substring(full.length() - 1) + "\u0001never";
    SelmaStreamingChatModel streaming = SelmaStreamingChatModel.builder().engine(engine).maxOutputTokens(30)
        .stopSequences(List.of(stop)).build();
    Recorder r = new Recorder();
    streaming.chat("Tell me about the sea.", r);
    assertEquals(full, r.await().aiMessage().text());
    assertEquals(full, String.join("", r.partials));
  }

  @Test
  void failuresReachOnErrorAndTheListeners() throws Exception {
    try (Engine tiny = TestModels.load(TestModels.LLAMA31_TOOLS, 16)) {
      List<String> events = new CopyOnWriteArrayList<>();
      ChatModelListener listener = new ChatModelListener() {
        @Override
        public void onRequest(ChatModelRequestContext c) {
          events.add("request");
        }

        @Override
        public void onResponse(ChatModelResponseContext c) {
          events.add("response");
        }

        @Override
        public void onError(ChatModelErrorContext c) {
          events.add("error " + c.error().getClass().getSimpleName());
        }
      };
      SelmaStreamingChatModel streaming = SelmaStreamingChatModel.builder().engine(tiny)
          .listeners(List.of(listener)).build();
      Recorder r = new Recorder();
      streaming.chat("a prompt longer than sixteen tokens, with the template's header", r);
      Exception e = assertThrows(Exception.class, r::await);
      assertInstanceOf(InvalidRequestException.class, e.getCause());
      assertTrue(r.partials.isEmpty());
      assertEquals(0, r.completions.get());
      assertEquals(List.of("request", "error InvalidRequestException"), events);
    }
    SelmaStreamingChatModel streaming = SelmaStreamingChatModel.builder().engine(engine).build();
    assertThrows(UnsupportedFeatureException.class, () -> streaming.chat(ChatRequest.builder()
        .messages(UserMessage.from("Hi")).parameters(ChatRequestParameters.builder().modelName("other").build())
        .build(), new Recorder()), "request checks fail on the caller's thread, as LangChain4j expects");
  }

  @Test
  void exceptionsFromTheHandlerGoToItsOnError() throws Exception {
    RuntimeException boom = new RuntimeException("handler failed");
    List<Throwable> errors = new CopyOnWriteArrayList<>();
    AtomicInteger partials = new AtomicInteger();
    CompletableFuture<ChatResponse> done = new CompletableFuture<>();
    AtomicInteger listenerErrors = new AtomicInteger();
    AtomicInteger listenerResponses = new AtomicInteger();
    ChatModelListener listener = new ChatModelListener() {
      @Override
      public void onResponse(ChatModelResponseContext c) {
        listenerResponses.incrementAndGet();
      }

      @Override
      public void onError(ChatModelErrorContext c) {
        listenerErrors.incrementAndGet();
      }
    };
    SelmaStreamingChatModel streaming = SelmaStreamingChatModel.builder().engine(engine).maxOutputTokens(10)
        .listeners(List.of(listener)).build();
    streaming.chat("Hello", new StreamingChatResponseHandler() {
      @Override
      public void onPartialResponse(String partial) {
        partials.incrementAndGet();
        throw boom;
      }

      @Override
      public void onCompleteResponse(ChatResponse response) {
        done.complete(response);
        throw boom;
      }

      @Override
      public void onError(Throwable error) {
        errors.add(error);
        throw new IllegalStateException("ignored");
      }
    });
    ChatResponse response = done.get(60, TimeUnit.SECONDS);
    Thread.sleep(100);
    assertEquals(10, response.tokenUsage().outputTokenCount(), "the generation went on");
    assertTrue(partials.get() > 1);
    assertEquals(partials.get() + 1, errors.size(), "one onError per failed onPartialResponse, one for completion");
    errors.forEach(e -> assertEquals(boom, e));
    assertEquals(errors.size(), listenerErrors.get());
    assertEquals(1, listenerResponses.get());
  }

  @Test
  void cancellingStopsTheEngine() throws Exception {
    AtomicInteger engineTokens = new AtomicInteger();
    SelmaStreamingChatModel streaming = SelmaStreamingChatModel.builder().engine(engine).maxOutputTokens(900)
        .generationListener(new GenerationListener() {
          @Override
          public void onToken(int token, String text) {
            engineTokens.incrementAndGet();
          }
        }).build();
    Recorder r = new Recorder() {
      @Override
      public void onPartialResponse(PartialResponse partial, PartialResponseContext context) {
        super.onPartialResponse(partial, context);
        if (partials.size() == 3) {
          context.streamingHandle().cancel();
          assertTrue(context.streamingHandle().isCancelled());
        }
      }
    };
    streaming.chat("Tell me a long story.", r);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (r.partials.size() < 3 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    Thread.sleep(300);
    int stopped = engineTokens.get();
    Thread.sleep(700);
    assertEquals(stopped, engineTokens.get(), "the engine's token counter stopped moving");
    assertTrue(stopped < 900, "generation ended early: " + stopped);
    assertEquals(3, r.partials.size(), "no partial answer after cancel()");
    assertEquals(0, r.completions.get(), "no completion after cancel()");
    assertTrue(r.errors.isEmpty(), "no error after cancel()");
    assertNull(r.done.getNow(null));
  }
}
