package dev.selma.solr;

import dev.selma.engine.model.GgmlType;
import dev.selma.testmodels.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.solr.client.solrj.SolrClient;
import org.apache.solr.client.solrj.embedded.EmbeddedSolrServer;
import org.apache.solr.client.solrj.impl.Http2SolrClient;
import org.apache.solr.core.CoreContainer;
import org.apache.solr.common.SolrInputDocument;
import org.apache.solr.common.util.NamedList;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;

/**
 * End-to-end latency of {@code /answer} on one Solr node on Jetty, asked over HTTP with SolrJ: an index
 * of long documents, questions whose top documents fill the token budget, and the server's breakdown
 * (search, fetch, queue, tokenize, prefill, decode) beside the client's round trip. Prints a Markdown
 * table of medians.
 *
 * <pre>
 * solr-plugin/answer-benchmark.sh [--model FILE] [--docs 100] [--words 3000] [--questions 5]
 *     [--budget 4096] [--context 8192] [--max-new-tokens 32] [--threads 0] [--embedded true]
 * </pre>
 *
 * Without {@code --model} a random model of the demo model's shape (Mistral 32K vocabulary, hidden 256,
 * 4 layers, 8 heads, FFN 768, Q8_0) is written: latency does not depend on the weights' values.
 */
public final class AnswerBenchmark {
  private AnswerBenchmark() {}

  private static final String[] WORDS = ("river harbour keeper lamp winter tide ship letter garden window bridge "
      + "mountain orchard comet glacier whale lighthouse merchant candle market village storm road forest field "
      + "silver evening morning quiet distant ancient narrow open golden heavy").split(" ");

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    int docs = Integer.parseInt(a.getOrDefault("docs", "100"));
    int words = Integer.parseInt(a.getOrDefault("words", "3000"));
    int questions = Integer.parseInt(a.getOrDefault("questions", "5"));
    int budget = Integer.parseInt(a.getOrDefault("budget", "4096"));
    int context = Integer.parseInt(a.getOrDefault("context", "8192"));
    int maxNew = Integer.parseInt(a.getOrDefault("max-new-tokens", "32"));
    int threads = Integer.parseInt(a.getOrDefault("threads", "0"));
    Path dir = Files.createTempDirectory("selma-answer-bench");
    Path model = a.containsKey("model") ? Path.of(a.get("model"))
        : TestModels.write(dir.resolve("demo-shape.gguf"), "random-demo-shape", context, 1, 256, 4, 8, 8, 768,
            GgmlType.Q8_0);

    Path home = dir.resolve("solr");
    Path conf = Files.createDirectories(home.resolve("bench").resolve("conf"));
    try (var files = Files.list(SolrTestSupport.configset())) {
      for (Path f : files.toList()) {
        Files.copy(f, conf.resolve(f.getFileName()));
      }
    }
    Files.writeString(home.resolve("bench").resolve("core.properties"), "name=bench\n");
    Map<String, String> props = new LinkedHashMap<>();
    props.put("selma.model.bench.path", model.toString());
    props.put("selma.model.bench.threads", String.valueOf(threads));
    props.put("selma.model.bench.contextLength", String.valueOf(context));
    Files.writeString(home.resolve("solr.xml"), "<solr>\n" + SolrTestSupport.properties(props) + "</solr>\n");
    // In process (--embedded true): the same request handler through EmbeddedSolrServer, without Jetty and
    // HTTP, for machines that have room for Solr's core libraries but not its test framework.
    boolean embedded = Boolean.parseBoolean(a.getOrDefault("embedded", "false"));
    JettySolrRunner jetty = null;
    CoreContainer container = null;
    SolrClient client;
    if (embedded) {
      container = CoreContainer.createAndLoad(home);
      client = new EmbeddedSolrServer(container, "bench");
    } else {
      jetty = new JettySolrRunner(home.toString(), JettyConfig.builder().setPort(0).build());
      jetty.start();
      client = new Http2SolrClient.Builder(jetty.getBaseUrl().toString()).requestTimeout(600_000).build();
    }
    try {
      SplittableRandom r = new SplittableRandom(42);
      List<SolrInputDocument> batch = new ArrayList<>();
      for (int d = 0; d < docs; d++) {
        StringBuilder text = new StringBuilder();
        for (int w = 0; w < words; w++) {
          text.append(WORDS[r.nextInt(WORDS.length)]).append(w % 12 == 11 ? ". " : " ");
        }
        batch.add(SolrTestSupport.doc("doc-" + d, "Document " + d + " on " + WORDS[d % WORDS.length], text.toString()));
      }
      long t0 = System.nanoTime();
      SolrTestSupport.index(client, "bench", batch, null, null);
      System.out.printf(Locale.ROOT, "indexed %d documents of %d words in %.1f s; model %s%n", docs, words,
          (System.nanoTime() - t0) / 1e9, model);

      String[] keys = {"searchMs", "fetchMs", "queueMs", "tokenizeMs", "prefillMs", "decodeMs", "totalMs"};
      List<double[]> rows = new ArrayList<>();
      List<int[]> usage = new ArrayList<>();
      for (int q = -1; q < questions; q++) {
        String question = "Where did the " + WORDS[(q + 7) % WORDS.length] + " " + WORDS[(q + 3) % WORDS.length]
            + " go?";
        long s = System.nanoTime();
        NamedList<Object> rsp = client.request(SolrTestSupport.answerRequest("q", question, "rows", "20",
            "selma.budget", String.valueOf(budget), "selma.maxNewTokens", String.valueOf(maxNew), "fl", "id"), "bench");
        double http = (System.nanoTime() - s) / 1e6;
        if (q < 0) {
          continue; // warm-up: loads the model, JIT
        }
        NamedList<?> timing = (NamedList<?>) rsp.get("timing");
        NamedList<?> u = (NamedList<?>) rsp.get("usage");
        double[] row = new double[keys.length + 1];
        for (int k = 0; k < keys.length; k++) {
          row[k] = ((Number) timing.get(keys[k])).doubleValue();
        }
        row[keys.length] = http;
        rows.add(row);
        usage.add(new int[] {(Integer) u.get("promptTokens"), (Integer) u.get("generatedTokens"),
            SolrTestSupport.list(rsp, "citations").size()});
      }
      System.out.println();
      System.out.println("| stage | median ms |");
      System.out.println("| --- | ---: |");
      String[] names = {"search", "fetch stored text", "queue", "tokenize + pack", "prefill", "decode",
          "server total", embedded ? "client round trip (in process)" : "client round trip (HTTP)"};
      for (int k = 0; k <= keys.length; k++) {
        final int col = k;
        System.out.printf(Locale.ROOT, "| %s | %.1f |%n", names[k], median(rows.stream().mapToDouble(x -> x[col])
            .toArray()));
      }
      System.out.printf(Locale.ROOT, "%nprompt tokens (median) %d, generated %d, documents packed %d; %d questions%n",
          (int) median(usage.stream().mapToDouble(x -> x[0]).toArray()),
          (int) median(usage.stream().mapToDouble(x -> x[1]).toArray()),
          (int) median(usage.stream().mapToDouble(x -> x[2]).toArray()), questions);
    } finally {
      client.close();
      if (container != null) {
        container.shutdown(); // EmbeddedSolrServer leaves a container it did not create running
      }
      if (jetty != null) {
        jetty.stop();
      }
    }
  }

  private static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s.length == 0 ? 0 : s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }
}
