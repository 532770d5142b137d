package dev.selma.engine.cli;

import dev.selma.engine.model.GgufFile;
import dev.selma.engine.model.GgufMetadata;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import dev.selma.engine.model.Safetensors;
import dev.selma.engine.model.Tensor;
import java.io.PrintWriter;
import java.lang.reflect.Array;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "inspect", description = "Print a model file's metadata, hyper-parameters and tensors.")
final class InspectCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", description = "GGUF file or Hugging Face folder") Path path;

  @Option(names = "--array-items", defaultValue = "8", description = "array elements shown (${DEFAULT-VALUE})")
  int arrayItems;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    if (Files.isDirectory(path)) {
      try (Safetensors st = Safetensors.open(path)) {
        out.println("Hugging Face folder " + path + " (" + st.files().size() + " safetensors file(s))");
        printTensors(out, st.tensors());
      }
    } else {
      try (GgufFile gguf = GgufFile.open(path)) {
        out.println("GGUF v" + gguf.version() + " " + path + ", alignment " + gguf.alignment());
        out.println("metadata:");
        for (Map.Entry<String, GgufMetadata.Value> e : gguf.metadata().values().entrySet()) {
          out.println("  " + e.getKey() + " = " + show(e.getValue()));
        }
        printTensors(out, gguf.tensors());
      }
    }
    try (ModelFiles model = ModelLoader.open(path)) {
      ModelConfig c = model.config();
      out.println("model: " + c);
    }
    return 0;
  }

  private static void printTensors(PrintWriter out, Map<String, Tensor> tensors) {
    long elements = 0, bytes = 0;
    out.println("tensors:");
    for (Tensor t : tensors.values()) {
      out.printf("  %-40s %-5s %s%n", t.name(), t.type(), Arrays.toString(t.shape()));
      elements += t.elementCount();
      bytes += t.data().byteSize();
    }
    out.printf("%d tensors, %.2fM parameters, %.1f MiB%n", tensors.size(), elements / 1e6, bytes / 1048576.0);
  }

  private String show(GgufMetadata.Value v) {
    Object value = v.value();
    if (v.type() != GgufMetadata.ValueType.ARRAY) {
      return value instanceof String s ? quote(s) : String.valueOf(value);
    }
    int n = Array.getLength(value);
    StringBuilder b = new StringBuilder(v.elementType() + "[" + n + "] [");
    for (int i = 0; i < Math.min(n, arrayItems); i++) {
      Object e = Array.get(value, i);
      b.append(i == 0 ? "" : ", ").append(e instanceof String s ? quote(s) : String.valueOf(e));
    }
    return b.append(n > arrayItems ? ", ...]" : "]").toString();
  }

  private static String quote(String s) {
    String shown = s.length() > 120 ? s.substring(0, 120) + "..." : s;
    return '"' + shown.replace("\n", "\\n") + '"';
  }
}
