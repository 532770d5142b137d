package dev.selma.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.selma.engine.Engine;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** One model instance serves eight threads at once; each gets the answer it gets alone (greedy). */
class ConcurrencyTest {
  @Test
  void eightThreadsGetTheAnswersTheyGetAlone() throws Exception {
    try (Engine engine = TestModels.load(TestModels.LLAMA31_TOOLS, 512)) {
      SelmaChatModel model = SelmaChatModel.builder().engine(engine).maxOutputTokens(24).build();
      List<String> questions = new ArrayList<>();
      List<String> alone = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        questions.add("Question " + i + ": what is " + (i * 7) + " plus " + (i + 3) + "?");
        alone.add(model.chat(questions.get(i)));
      }
      ExecutorService pool = Executors.newFixedThreadPool(8);
      try {
        CountDownLatch start = new CountDownLatch(1);
        List<Future<String>> together = new ArrayList<>();
        for (String q : questions) {
          together.add(pool.submit(() -> {
            start.await();
            return model.chat(q);
          }));
        }
        start.countDown();
        for (int i = 0; i < 8; i++) {
          assertEquals(alone.get(i), together.get(i).get(), "thread " + i);
        }
      } finally {
        pool.shutdownNow();
      }
    }
  }
}
