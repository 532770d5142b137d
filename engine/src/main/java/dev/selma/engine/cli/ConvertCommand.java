package dev.selma.engine.cli;

import dev.selma.engine.model.HfToGguf;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import dev.selma.engine.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "convert", description = "Write a Hugging Face folder as a GGUF file (with its tokenizer).")
final class ConvertCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", description = "Hugging Face folder") Path folder;

  @Parameters(index = "1", description = "GGUF file to write") Path out;

  @Option(names = "--type", defaultValue = "F16",
      description = "type of the 2-D weights: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K (${DEFAULT-VALUE})")
  String type;

  @Override
  public Integer call() throws Exception {
    try (ModelFiles hf = ModelLoader.open(folder)) {
      Tokenizer tokenizer = Tokenizer.fromHuggingFace(folder);
      HfToGguf.convert(hf, out, Choices.type(type), tokenizer.toGgufMetadata());
    }
    spec.commandLine().getOut().println("wrote " + out);
    return 0;
  }
}
