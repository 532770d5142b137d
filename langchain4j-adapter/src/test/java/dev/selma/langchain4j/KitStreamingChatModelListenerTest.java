package dev.selma.langchain4j;

import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.common.AbstractStreamingChatModelListenerIT;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.selma.engine.Engine;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * LangChain4j's streaming listener conformance suite, whole: request, response and error events with their
 * parameters, attributes and provider. The failing model is one whose context (16 tokens) cannot
 * hold the prompt, which Selma reports as an {@link InvalidRequestException}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KitStreamingChatModelListenerTest extends AbstractStreamingChatModelListenerIT {
  private Engine engine;
  private Engine tiny;

  @BeforeAll
  void load() throws IOException {
    engine = TestModels.load(TestModels.LLAMA31_TOOLS, 1024);
    tiny = TestModels.load(TestModels.LLAMA31_TOOLS, 16);
  }

  @AfterAll
  void close() {
    engine.close();
    tiny.close();
  }

  @Override
  protected StreamingChatModel createModel(ChatModelListener listener) {
    return SelmaStreamingChatModel.builder().engine(engine).temperature(temperature()).topP(topP())
        .maxOutputTokens(maxTokens()).listeners(List.of(listener)).build();
  }

  @Override
  protected String modelName() {
    return engine.modelName();
  }

  @Override
  protected StreamingChatModel createFailingModel(ChatModelListener listener) {
    return SelmaStreamingChatModel.builder().engine(tiny).listeners(List.of(listener)).build();
  }

  @Override
  protected Class<? extends Exception> expectedExceptionClass() {
    return InvalidRequestException.class;
  }
}
