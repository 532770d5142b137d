package dev.selma.langchain4j.rag;

import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.rag.content.Content;
import dev.langchain4j.rag.content.injector.ContentInjector;
import java.util.List;

/**
 * Puts retrieved documents into the user message in the layout Selma's demo model was trained on:
 *
 * <pre>
 * Documents:
 *
 * [doc 1] id: {id} | title: {title}
 * {text}
 *
 * [doc 2] id: ...
 *
 * Question: {question}
 * </pre>
 *
 * with {@code id} and {@code title} from the contents' text segment metadata (as Selma's retrievers
 * set them). Pair it with the system message {@code Answer the question from the documents. Quote the
 * sentence that answers it.} With no contents, the message is left as it is.
 */
public final class DocumentsContentInjector implements ContentInjector {

  @Override
  public ChatMessage inject(List<Content> contents, ChatMessage chatMessage) {
    if (contents.isEmpty() || !(chatMessage instanceof UserMessage user) || !user.hasSingleText()) {
      return chatMessage;
    }
    String text = format(contents, user.singleText());
    return user.name() == null ? UserMessage.from(text) : UserMessage.from(user.name(), text);
  }

  /** The documents and the question in the demo model's layout. */
  public static String format(List<Content> contents, String question) {
    StringBuilder b = new StringBuilder("Documents:\n\n");
    int n = 1;
    for (Content c : contents) {
      String id = c.textSegment().metadata().getString(DocumentHit.ID);
      String title = c.textSegment().metadata().getString(DocumentHit.TITLE);
      b.append("[doc ").append(n++).append("] id: ").append(id == null ? "" : id)
          .append(" | title: ").append(title == null ? "" : title).append('\n')
          .append(c.textSegment().text()).append("\n\n");
    }
    return b.append("Question: ").append(question).toString();
  }
}
