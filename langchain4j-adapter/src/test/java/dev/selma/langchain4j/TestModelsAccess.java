package dev.selma.langchain4j;

import dev.selma.engine.Engine;
import java.io.IOException;

/** Lets tests in other packages load the Llama 3.1 test model. */
public final class TestModelsAccess {
  private TestModelsAccess() {}

  public static Engine load(int contextLength) throws IOException {
    return TestModels.load(TestModels.LLAMA31_TOOLS, contextLength);
  }
}
