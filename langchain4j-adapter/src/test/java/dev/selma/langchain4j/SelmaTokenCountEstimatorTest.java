package dev.selma.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.selma.engine.Engine;
import dev.selma.engine.tokenizer.template.Message;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Token counts from the model's own tokenizer and chat template. */
class SelmaTokenCountEstimatorTest {
  @Test
  void countsExactly() throws IOException {
    try (Engine engine = TestModels.load(TestModels.LLAMA31_TOOLS, 512);
        Engine mistral = TestModels.load(TestModels.MISTRAL_NO_TOOLS, 512)) {
      SelmaTokenCountEstimator tokens = new SelmaTokenCountEstimator(engine);
      String text = "Whole documents, packed to the last token.";
      assertEquals(engine.tokenizer().encode(text, false).length, tokens.estimateTokenCountInText(text));
      int rendered = engine.tokenizer().encode(engine.renderChat(List.of(Message.system("Be brief."),
          Message.user("Hi"), Message.assistant("Hello")), false, Map.of()), false).length;
      assertEquals(rendered, tokens.estimateTokenCountInMessages(List.of(SystemMessage.from("Be brief."),
          UserMessage.from("Hi"), AiMessage.from("Hello"))));
      // Mistral's template rejects a lone system message: its text is counted instead.
      SelmaTokenCountEstimator m = new SelmaTokenCountEstimator(mistral);
      assertEquals(mistral.tokenizer().encode("Be brief.", false).length,
          m.estimateTokenCountInMessage(SystemMessage.from("Be brief.")));
    }
  }
}
