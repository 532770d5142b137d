package dev.selma.engine.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SelmaCliTest {
  private static final String MODEL = "../demo-corpus/selma-demo.gguf";

  /** Exit code, standard output, standard error. */
  private record Run(int code, String out, String err) {}

  private static Run selma(String... args) {
    StringWriter out = new StringWriter(), err = new StringWriter();
    int code = Selma.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void generateAnswersThroughTheChatTemplateAndReportsSpeed() {
    Run r = selma("generate", "-m", MODEL, "-t", "2", "-n", "24", "--system",
        "Answer the question from the documents. Quote the sentence that answers it.", "-p",
        "Documents:\n\n[doc 1] id: a | title: Notes\nThe sky was grey. The gate code of the old mill is 73115. "
            + "It rained.\n\nQuestion: What is the gate code of the old mill?");
    assertEquals(0, r.code(), r.err());
    assertEquals("The gate code of the old mill is 73115.", r.out().strip());
    assertTrue(r.err().contains("prefill") && r.err().contains("tokens/s") && r.err().contains("; stop"), r.err());
  }

  @Test
  void generateContinuesARawPromptFromAFile(@TempDir Path dir) throws Exception {
    Path prompt = dir.resolve("prompt.txt");
    Files.writeString(prompt, "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
        + "them. I will quiz you about the important information there.\nThe grass is green. The pass key is 4821. "
        + "Remember it. 4821 is the pass key.\nThe sky is blue.\nWhat is the pass key? The pass key is");
    Run r = selma("generate", "-m", MODEL, "-t", "2", "--raw", "-f", prompt.toString(), "-n", "8"); // a token a digit
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().strip().startsWith("4821"), r.out());
  }

  @Test
  void aKvCacheFolderLetsALaterRunReuseThePromptsPages(@TempDir Path dir) throws Exception {
    StringBuilder doc = new StringBuilder("Documents:\n\n[doc 1] id: a | title: Notes\n");
    for (int i = 0; i < 60; i++) {
      doc.append("The sky over the mill was grey on day ").append(i).append(". ");
    }
    doc.append("The gate code of the old mill is 73115.\n\nQuestion: ");
    Path folder = dir.resolve("kv");
    String[] common = {"generate", "-m", MODEL, "-t", "2", "-n", "24", "--kv-cache-dir", folder.toString(), "--system",
        "Answer the question from the documents. Quote the sentence that answers it.", "-p"};
    Run first = selma(concat(common, doc + "What is the gate code of the old mill?"));
    assertEquals(0, first.code(), first.err());
    assertTrue(first.err().contains("(0 from the KV cache)"), first.err());
    Run second = selma(concat(common, doc + "What is the gate code of the old mill?"));
    assertEquals(0, second.code(), second.err());
    assertEquals(first.out(), second.out(), "the pages read back from disk are exact");
    java.util.regex.Matcher cached = java.util.regex.Pattern.compile("\\((\\d+) from the KV cache\\)")
        .matcher(second.err());
    assertTrue(cached.find() && Integer.parseInt(cached.group(1)) >= 256, second.err());
    assertTrue(Files.list(folder).anyMatch(f -> f.toString().endsWith(".kvpage")), "page files on disk");

    Run bad = selma("generate", "-m", MODEL, "-p", "hi", "--kv-cache-dir", folder.toString(), "--kv-cache-bytes", "lots");
    assertEquals(1, bad.code());
    assertTrue(bad.err().contains("--kv-cache-bytes: not a size"), bad.err());
  }

  private static String[] concat(String[] a, String last) {
    String[] all = java.util.Arrays.copyOf(a, a.length + 1);
    all[a.length] = last;
    return all;
  }

  @Test
  void inspectPrintsMetadataHyperParametersAndTensors() {
    Run r = selma("inspect", MODEL);
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("general.architecture = \"llama\""), r.out());
    assertTrue(r.out().contains("blk.0.attn_q.weight") && r.out().contains("Q8_0"), r.out());
    assertTrue(r.out().contains("hiddenSize=256"), r.out());
  }

  @Test
  void badInputEndsWithAClearMessageAndExitCodeOne(@TempDir Path dir) throws Exception {
    Run missing = selma("inspect", dir.resolve("nope.gguf").toString());
    assertEquals(1, missing.code());
    assertTrue(missing.err().startsWith("selma: no such file: "), missing.err());

    Path broken = dir.resolve("broken.gguf");
    Files.write(broken, java.util.Arrays.copyOf(Files.readAllBytes(Path.of(MODEL)), 1000));
    Run truncated = selma("generate", "-m", broken.toString(), "-p", "hi");
    assertEquals(1, truncated.code());
    assertTrue(truncated.err().startsWith("selma: " + broken), truncated.err());

    Run backend = selma("generate", "-m", MODEL, "-p", "hi", "--backend", "tpu");
    assertEquals("selma: unknown backend 'tpu'; use auto, cpu or cuda", backend.err().strip());
    Run top = selma("generate", "-m", MODEL, "-p", "hi", "--top-p", "0");
    assertTrue(top.err().contains("top_p must be in (0, 1]"), top.err());
    Run kv = selma("generate", "-m", MODEL, "-p", "hi", "--kv-precision", "fp4");
    assertEquals("selma: unknown KV precision 'fp4'; expected auto or fp8", kv.err().strip());
  }

  @Test
  void fp8KvPagesRunOnTheCpuAsTheGpusReference() {
    Run fp8 = selma("generate", "-m", MODEL, "-p", "hi", "-n", "4", "--backend", "cpu", "--kv-precision", "fp8");
    assertEquals(0, fp8.code(), fp8.err());
    assertTrue(fp8.err().contains("KV rounded to fp8"), fp8.err());
  }
}
