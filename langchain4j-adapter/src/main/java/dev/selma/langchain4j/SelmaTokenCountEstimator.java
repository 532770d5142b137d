package dev.selma.langchain4j;

import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.model.TokenCountEstimator;
import dev.selma.engine.Engine;
import dev.selma.engine.tokenizer.template.Message;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Exact token counts from the model's own tokenizer, for LangChain4j's token-window chat memory,
 * document splitters and Selma's retrievers' token budgets. Messages are counted as the chat template
 * renders them (markers included); a message the template cannot render alone (e.g. a system message
 * for a template that requires a user turn) is counted by its text.
 */
public class SelmaTokenCountEstimator implements TokenCountEstimator {
  private final Engine engine;

  public SelmaTokenCountEstimator(Engine engine) {
    this.engine = engine;
  }

  @Override
  public int estimateTokenCountInText(String text) {
    return engine.tokenizer().encode(text, false).length;
  }

  @Override
  public int estimateTokenCountInMessage(ChatMessage message) {
    return estimateTokenCountInMessages(List.of(message));
  }

  @Override
  public int estimateTokenCountInMessages(Iterable<ChatMessage> messages) {
    List<ChatMessage> list = new ArrayList<>();
    messages.forEach(list::add);
    List<Message> converted = Conversation.messages(list);
    if (engine.hasChatTemplate()) {
      try {
        return estimateTokenCountInText(engine.renderChat(converted, false, Map.of()));
      } catch (RuntimeException e) {
        // Counted by text below.
      }
    }
    int n = 0;
    for (Message m : converted) {
      n += estimateTokenCountInText(m.content() == null ? "" : String.valueOf(m.content()));
      for (Map<String, Object> call : m.toolCalls()) {
        n += estimateTokenCountInText(String.valueOf(call.get("function")));
      }
    }
    return n;
  }
}
