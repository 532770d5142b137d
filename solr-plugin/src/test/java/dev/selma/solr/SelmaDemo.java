package dev.selma.solr;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.apache.solr.client.solrj.impl.Http2SolrClient;
import org.apache.solr.common.SolrInputDocument;
import org.apache.solr.common.util.NamedList;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;

/**
 * The one-command demo: a real Solr on Jetty on localhost with Selma's configset and the bundled demo
 * model, the demo corpus indexed as whole documents, the demo questions asked through {@code /answer}
 * over HTTP, each answer printed with its citations and timings and whether it was right; then it
 * keeps serving until Ctrl-C, or exits with {@code --once}. Run it with {@code ./demo}.
 */
public final class SelmaDemo {
  private SelmaDemo() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new LinkedHashMap<>();
    List<String> flags = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--once")) {
        flags.add("once");
      } else if (args[i].startsWith("--") && i + 1 < args.length) {
        a.put(args[i].substring(2), args[++i]);
      } else {
        throw new IllegalArgumentException("unknown argument '" + args[i] + "'; see ./demo --help in the README");
      }
    }
    Path repo = Path.of(System.getProperty("selma.repo", ".")).toAbsolutePath().normalize();
    Path corpus = repo.resolve("demo-corpus");
    Path model = Path.of(a.getOrDefault("model", corpus.resolve("selma-demo.gguf").toString()));
    if (!Files.isRegularFile(model)) {
      throw new IllegalArgumentException("no model file at " + model);
    }
    // Select-and-merge with key-bound block selection, chosen for the answer by its own queries
    // (selection query), and re-indexed positions: every distance stays inside the demo model's 4K
    // training window, and a document is read in ~15 s on two cores instead of a minute with dense
    // Self-Extend (docs/evaluation.md). --selma.* flags override.
    a.putIfAbsent("selma.attention", "select-merge");
    a.putIfAbsent("selma.attention.selection", "query");
    a.putIfAbsent("selma.attention.topK", "55");
    a.putIfAbsent("selma.positions", "reindexed");
    int port = Integer.parseInt(a.getOrDefault("port", "8983"));
    String questionsArg = a.getOrDefault("questions", "6");
    String rows = a.getOrDefault("rows", "1");
    String budget = a.getOrDefault("budget", "20480");

    Path home = repo.resolve("solr-plugin/target/demo-solr");
    deleteTree(home);
    Path conf = Files.createDirectories(home.resolve("demo").resolve("conf"));
    try (var files = Files.list(repo.resolve("configs/selma/conf"))) {
      for (Path f : files.toList()) {
        Files.copy(f, conf.resolve(f.getFileName()));
      }
    }
    Files.writeString(home.resolve("demo").resolve("core.properties"), "name=demo\n");
    Map<String, String> props = new LinkedHashMap<>();
    props.put("selma.model.demo.path", model.toString());
    props.put("selma.model.demo.contextLength", String.valueOf(Integer.parseInt(budget) + 64));
    props.put("selma.model.demo.threads", a.getOrDefault("threads", "0"));
    Files.writeString(home.resolve("solr.xml"), "<solr>\n" + SolrTestSupport.properties(props) + "</solr>\n");

    System.out.println("Selma demo: starting Solr on http://localhost:" + port + "/solr ...");
    JettySolrRunner jetty = new JettySolrRunner(home.toString(), JettyConfig.builder().setPort(port).build());
    jetty.start();
    CountDownLatch stop = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        jetty.stop();
      } catch (Exception e) {
        System.err.println("stopping Solr: " + e);
      }
      stop.countDown();
    }));
    String base = jetty.getBaseUrl().toString();
    try (Http2SolrClient client = new Http2SolrClient.Builder(base).requestTimeout(1_800_000).build()) {
      ObjectMapper json = new ObjectMapper();
      JsonNode manifest = json.readTree(corpus.resolve("manifest.json").toFile());
      List<SolrInputDocument> docs = new ArrayList<>();
      for (JsonNode d : manifest.get("documents")) {
        String text = Files.readString(corpus.resolve(d.get("file").asText()), StandardCharsets.UTF_8);
        docs.add(SolrTestSupport.doc(d.get("id").asText(), d.get("title").asText(), text));
      }
      long t0 = System.nanoTime();
      SolrTestSupport.index(client, "demo", docs, null, null);
      System.out.printf(Locale.ROOT, "indexed %d whole documents from demo-corpus/ in %.1f s; model %s%n%n",
          docs.size(), (System.nanoTime() - t0) / 1e9, model.getFileName());

      JsonNode questions = json.readTree(corpus.resolve("questions.json").toFile()).get("questions");
      int n = questionsArg.equals("all") ? questions.size() : Math.min(questions.size(), Integer.parseInt(questionsArg));
      int right = 0;
      for (int i = 0; i < n; i++) {
        JsonNode q = questions.get(i);
        // The search gets the question's words ('?' would be a wildcard to edismax); the model gets the question.
        String words = q.get("question").asText().replaceAll("[?!.,;:]", " ").strip();
        List<String> params = new ArrayList<>(List.of("q", words, "selma.question", q.get("question").asText(),
            "rows", rows,
            "selma.budget", budget, "selma.maxNewTokens", "32", "fl", "id,score"));
        a.forEach((k, v) -> {
          if (k.startsWith("selma.")) {
            params.add(k);
            params.add(v);
          }
        });
        NamedList<Object> rsp = client.request(SolrTestSupport.answerRequest(params.toArray(String[]::new)), "demo");
        String answer = String.valueOf(rsp.get("answer")).strip();
        boolean ok = answer.toLowerCase(Locale.ROOT).contains(q.get("answer").asText().toLowerCase(Locale.ROOT));
        right += ok ? 1 : 0;
        NamedList<?> timing = (NamedList<?>) rsp.get("timing");
        NamedList<?> usage = (NamedList<?>) rsp.get("usage");
        System.out.printf(Locale.ROOT, "Q%d  %s%n    answer:   %s%n    expected: %s  -> %s%n", i + 1,
            q.get("question").asText(), answer, q.get("answer").asText(), ok ? "RIGHT" : "WRONG");
        for (NamedList<Object> c : SolrTestSupport.list(rsp, "citations")) {
          System.out.printf(Locale.ROOT, "    [doc %s] %s (%s), %s tokens%s%s%n", c.get("n"), c.get("id"), c.get("title"),
              c.get("tokens"), Boolean.TRUE.equals(c.get("truncated")) ? ", truncated " + c.get("truncation") : "",
              c.get("attentionShare") == null ? "" : String.format(Locale.ROOT, ", attention %.0f%%",
                  100 * ((Number) c.get("attentionShare")).doubleValue()));
        }
        System.out.printf(Locale.ROOT, "    %s prompt tokens; search %s ms, tokenize %s ms, prefill %s ms, decode %s ms%n%n",
            usage.get("promptTokens"), timing.get("searchMs"), timing.get("tokenizeMs"), timing.get("prefillMs"),
            timing.get("decodeMs"));
      }
      System.out.printf(Locale.ROOT, "%d of %d answers right.%n", right, n);
    }
    if (flags.contains("once")) {
      jetty.stop();
      return;
    }
    System.out.println("\nSolr keeps serving; ask your own question (Ctrl-C stops):");
    System.out.println("  curl -s '" + base + "/demo/answer' --data-urlencode 'q=vault code of Pemberley'"
        + " --data-urlencode 'selma.question=What is the vault code of Pemberley?' -d rows=1"
        + " -d selma.attention=select-merge -d selma.attention.selection=query -d selma.attention.topK=55"
        + " -d selma.positions=reindexed -d selma.budget=" + budget + " -d fl=id");
    stop.await();
  }

  private static void deleteTree(Path p) throws java.io.IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (var s = Files.walk(p)) {
      for (Path f : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(f);
      }
    }
  }
}
