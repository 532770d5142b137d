package dev.selma.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The needle prompts, read back through the demo model's tokenizer. */
class PromptsTest {
  private static final String HAYSTACK = "It is a truth universally acknowledged, that a single man in possession "
      + "of a good fortune, must be in want of a wife. However little known the feelings or views of such a man "
      + "may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the families. ";
  private static Engine engine;

  @BeforeAll
  static void load() throws Exception {
    engine = Engine.load(EngineOptions.of(Path.of("../demo-corpus/selma-demo.gguf")).withThreads(1));
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  @Test
  void multiKeyHidesFourEntitiesAndAsksForTheFirst() {
    Prompts.Built p = new Prompts(engine, HAYSTACK).build(Task.NIAH_MULTIKEY, 2000, 0.5, new SplittableRandom(3));
    String text = engine.tokenizer().decode(p.ids(), true);
    Matcher facts = Pattern.compile("The (\\w+ code) of (the \\w+ \\w+) is (\\d+)\\.").matcher(text);
    int count = 0;
    String firstValueAsked = null;
    Matcher question = Pattern.compile("What is the (\\w+ code) of (the \\w+ \\w+)\\?").matcher(text);
    assertTrue(question.find(), text);
    while (facts.find()) {
      count++;
      assertEquals(question.group(1), facts.group(1));
      if (facts.group(2).equals(question.group(2))) {
        firstValueAsked = facts.group(3);
      }
    }
    assertEquals(4, count);
    assertEquals(p.expected(), firstValueAsked);
    assertTrue(p.ids().length <= 2000 && p.ids().length > 1900, "length " + p.ids().length);
  }

  @Test
  void multiValueHidesFourValuesOfOneEntityAndAsksForAll() {
    Prompts.Built p = new Prompts(engine, HAYSTACK).build(Task.NIAH_MULTIVALUE, 2000, 0.2, new SplittableRandom(4));
    String text = engine.tokenizer().decode(p.ids(), true);
    Matcher question = Pattern.compile("What are all the (\\w+ code)s of (the \\w+ \\w+)\\?").matcher(text);
    assertTrue(question.find(), text);
    Matcher facts = Pattern.compile("One of the (\\w+ code)s of (the \\w+ \\w+) is (\\d+)\\.").matcher(text);
    StringBuilder values = new StringBuilder();
    while (facts.find()) {
      assertEquals(question.group(1), facts.group(1));
      assertEquals(question.group(2), facts.group(2));
      values.append(values.isEmpty() ? "" : ",").append(facts.group(3));
    }
    assertEquals(4, p.expected().split(",").length);
    for (String v : p.expected().split(",")) {
      assertTrue(values.toString().contains(v), v + " in " + values);
    }
  }
}
