package dev.selma.solr;

import static dev.selma.solr.SolrTestSupport.answerRequest;
import static dev.selma.solr.SolrTestSupport.doc;
import static dev.selma.solr.SolrTestSupport.list;
import static dev.selma.solr.SolrTestSupport.text;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.LinkedHashMap;
import org.apache.solr.client.solrj.impl.BaseHttpSolrClient;
import org.apache.solr.client.solrj.impl.Http2SolrClient;
import org.apache.solr.client.solrj.request.QueryRequest;
import org.apache.solr.common.SolrDocumentList;
import org.apache.solr.common.SolrInputDocument;
import org.apache.solr.common.params.ModifiableSolrParams;
import org.apache.solr.common.util.NamedList;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.api.Request;
import org.eclipse.jetty.client.util.StringRequestContent;
import org.eclipse.jetty.http.HttpMethod;
import org.eclipse.jetty.http2.client.HTTP2Client;
import org.eclipse.jetty.http2.client.http.HttpClientTransportOverHTTP2;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** One real Solr node on Jetty, asked over HTTP with SolrJ. */
class StandaloneAnswerTest {
  private static final String CORE = "docs";
  private static JettySolrRunner jetty;
  private static Http2SolrClient client;
  private static SelmaModels models;

  @BeforeAll
  static void start() throws Exception {
    Path home = SolrTestSupport.dir().resolve("standalone");
    Map<String, String> props = new LinkedHashMap<>();
    props.put("selma.model.tiny.path", SolrTestSupport.tinyModel().toString());
    props.put("selma.model.tiny.threads", "1");
    props.put("selma.model.tiny.maxConcurrent", "1");
    props.put("selma.model.tiny.maxQueued", "1");
    props.put("selma.model.tiny.queueTimeoutMs", "300");
    props.put("selma.model.broken.path", SolrTestSupport.brokenModel().toString());
    Files.createDirectories(home);
    Files.writeString(home.resolve("solr.xml"), "<solr>\n" + SolrTestSupport.properties(props) + "</solr>\n");
    for (String core : List.of(CORE, "more")) {
      Path conf = Files.createDirectories(home.resolve(core).resolve("conf"));
      try (var files = Files.list(SolrTestSupport.configset())) {
        for (Path f : files.toList()) {
          Files.copy(f, conf.resolve(f.getFileName()));
        }
      }
      Files.writeString(home.resolve(core).resolve("core.properties"), "name=" + core + "\n");
    }
    jetty = new JettySolrRunner(home.toString(), JettyConfig.builder().setPort(0).build());
    jetty.start();
    client = new Http2SolrClient.Builder(jetty.getBaseUrl().toString()).build();
    List<SolrInputDocument> docs = new ArrayList<>();
    String[] topics = {"whales", "lighthouses", "glaciers", "orchards", "comets", "bridges"};
    for (int i = 0; i < topics.length; i++) {
      docs.add(doc("d" + i, "On " + topics[i], text(topics[i], 20 + 10 * i)));
    }
    docs.add(doc("long", "The long one on whales", text("whales and ships", 400)));
    SolrTestSupport.index(client, CORE, docs, null, null);
    SolrTestSupport.index(client, "more", List.of(doc("m1", "Moths", text("moths", 10))), null, null);
    models = (SelmaModels) jetty.getCoreContainer().getObjectCache().get(SelmaModels.KEY);
  }

  @AfterAll
  static void stop() throws Exception {
    client.close();
    jetty.stop();
    // The node's models were closed with it.
    assertNull(models.slot("tiny").current());
  }

  private static NamedList<Object> ask(String... kv) throws Exception {
    return client.request(answerRequest(kv), CORE);
  }

  private static BaseHttpSolrClient.RemoteSolrException fails(int code, String... kv) {
    BaseHttpSolrClient.RemoteSolrException e =
        assertThrows(BaseHttpSolrClient.RemoteSolrException.class, () -> ask(kv));
    assertEquals(code, e.code(), e.getMessage());
    return e;
  }

  @Test
  void answersWithCitationsUsageTimingAndTheNormalResultList() throws Exception {
    NamedList<Object> rsp = ask("q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "8", "fl", "id,title",
        "rows", "3");
    assertTrue(rsp.get("answer") instanceof String);
    assertEquals("tiny", rsp.get("model"));
    assertTrue(List.of("stop", "length").contains(rsp.get("finishReason")), String.valueOf(rsp.get("finishReason")));
    SolrDocumentList results = (SolrDocumentList) rsp.get("response");
    assertEquals(2, results.getNumFound());
    for (var d : results) {
      assertEquals(java.util.Set.of("id", "title"), new java.util.HashSet<>(d.getFieldNames()),
          "the result list keeps the fields asked for");
    }
    List<NamedList<Object>> citations = list(rsp, "citations");
    // The long document alone overflows the context: it is ranked first and cut to fit, which leaves no
    // room for the other one.
    assertEquals(2, citations.size() + list(rsp, "omitted").size());
    assertEquals(results.stream().map(d -> d.getFieldValue("id")).toList().subList(0, citations.size()),
        citations.stream().map(c -> c.get("id")).toList(), "by score, as retrieved");
    assertEquals(1, citations.get(0).get("n"));
    assertTrue((Float) citations.get(0).get("score") > 0);
    assertEquals("long", citations.get(0).get("id"));
    assertEquals(true, citations.get(0).get("truncated"));
    assertEquals("head", citations.get(0).get("truncation"));
    NamedList<?> usage = (NamedList<?>) rsp.get("usage");
    assertTrue((Integer) usage.get("promptTokens") > (Integer) usage.get("documentTokens"));
    assertTrue((Integer) usage.get("generatedTokens") <= 8);
    assertEquals(4096, usage.get("budgetTokens"));
    NamedList<?> timing = (NamedList<?>) rsp.get("timing");
    for (String k : List.of("searchMs", "fetchMs", "queueMs", "tokenizeMs", "prefillMs", "decodeMs", "totalMs")) {
      assertNotNull(timing.get(k), k);
    }
    assertNull(rsp.get("prompt"));
  }

  @Test
  void aSecondQuestionOverTheSameDocumentsReusesTheirCachedKeysAndValues() throws Exception {
    String[] base = {"q", "title:lighthouses OR title:comets", "selma.model", "tiny", "selma.maxNewTokens", "6",
        "selma.order", "stable"};
    NamedList<Object> cold = ask(concat(base, "selma.question", "Where is the light?", "selma.cache", "off"));
    NamedList<Object> first = ask(concat(base, "selma.question", "Where is the light?"));
    NamedList<Object> second = ask(concat(base, "selma.question", "Where is the light?"));
    assertTrue((Integer) ((NamedList<?>) second.get("usage")).get("cachedPromptTokens") > 0, second.toString());
    assertEquals(0, ((NamedList<?>) cold.get("usage")).get("cachedPromptTokens"));
    assertEquals(cold.get("answer"), first.get("answer"));
    assertEquals(cold.get("answer"), second.get("answer"), "a cached prefix gives exactly the same answer");
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Test
  void debugReturnsThePromptSelmaQuestionAndStableOrder() throws Exception {
    NamedList<Object> rsp = ask("q", "title:lighthouses OR title:comets", "selma.question", "Where is the light?",
        "selma.model", "tiny", "selma.maxNewTokens", "2", "selma.debug", "true", "selma.order", "stable");
    String prompt = (String) rsp.get("prompt");
    assertTrue(prompt.startsWith("<s>[SYS] Answer the question from the documents. Quote the sentence that answers it."
        + " [/SYS][INST] Documents:\n\n[doc 1] id: d1 | title: On lighthouses\nSentence 0 about lighthouses"), prompt);
    assertTrue(prompt.contains("\n\n[doc 2] id: d4 | title: On comets\n"), prompt);
    assertTrue(prompt.endsWith("Question: Where is the light? [/INST]"), prompt);
  }

  @Test
  void selectAndMergeReportsTheDocumentsTheAnswerAttendedToMost() throws Exception {
    NamedList<Object> rsp = ask("q", "whales OR lighthouses OR comets", "selma.model", "tiny", "selma.maxNewTokens",
        "4", "selma.attention", "select-merge", "selma.attention.blockSize", "16", "selma.attention.topK", "4",
        "selma.attention.merge", "1", "selma.attention.sinkBlocks", "1", "selma.attention.windowBlocks", "1",
        "selma.positions", "self-extend", "selma.positions.groupSize", "4", "selma.positions.window", "256");
    List<NamedList<Object>> attended = list(rsp, "attended");
    List<NamedList<Object>> citations = list(rsp, "citations");
    assertEquals(citations.size(), attended.size());
    double sum = 0;
    double previous = 1;
    for (NamedList<Object> a : attended) {
      double share = (Double) a.get("share");
      assertTrue(share <= previous, "most attended first");
      previous = share;
      sum += share;
    }
    assertEquals(1.0, sum, 1e-3);
    assertTrue(citations.stream().allMatch(c -> c.get("attentionShare") instanceof Double));
    // Decode steps choosing with their own query (selection query) are cited too.
    NamedList<Object> query = ask("q", "whales OR lighthouses OR comets", "selma.model", "tiny", "selma.maxNewTokens",
        "4", "selma.attention", "select-merge", "selma.attention.blockSize", "16", "selma.attention.topK", "4",
        "selma.attention.merge", "1", "selma.attention.sinkBlocks", "1", "selma.attention.windowBlocks", "1",
        "selma.attention.selection", "query", "selma.positions", "reindexed");
    assertEquals(1.0, list(query, "attended").stream().mapToDouble(a -> (Double) a.get("share")).sum(), 1e-3);
    // Dense attention chooses nothing: no attention-based citations.
    assertNull(ask("q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "2").get("attended"));
  }

  @Test
  void nothingRetrievedGivesAClearAnswerAndGeneratesNothing() throws Exception {
    NamedList<Object> rsp = ask("q", "zeppelins", "selma.model", "tiny");
    assertEquals(AnswerHandler.NO_DOCUMENTS, rsp.get("answer"));
    assertEquals("noDocuments", rsp.get("finishReason"));
    assertEquals(0, ((NamedList<?>) rsp.get("usage")).get("promptTokens"));
    assertTrue(list(rsp, "citations").isEmpty());
  }

  @Test
  void overBudgetDocumentsAreCutOrOmittedAndReported() throws Exception {
    NamedList<Object> rsp = ask("q", "whales", "selma.model", "tiny", "selma.budget", "600", "selma.maxNewTokens",
        "4", "selma.truncation", "middle");
    List<NamedList<Object>> citations = list(rsp, "citations");
    List<NamedList<Object>> omitted = list(rsp, "omitted");
    assertEquals(2, citations.size() + omitted.size());
    NamedList<Object> longOne = citations.stream().filter(c -> c.get("id").equals("long")).findFirst().orElseThrow();
    assertEquals(true, longOne.get("truncated"));
    assertEquals("middle", longOne.get("truncation"));
    assertTrue((Integer) longOne.get("tokens") < (Integer) longOne.get("originalTokens"));
    assertTrue((Integer) ((NamedList<?>) rsp.get("usage")).get("promptTokens") <= 596);

    rsp = ask("q", "whales", "selma.model", "tiny", "selma.maxDocTokens", "50", "selma.maxNewTokens", "2");
    for (NamedList<Object> c : list(rsp, "citations")) {
      assertTrue((Integer) c.get("tokens") <= 50);
    }
  }

  @Test
  void badRequestsAre400sNamingTheProblem() {
    assertTrue(fails(400, "q", "whales", "selma.model", "gpt-9").getMessage().contains("unknown model 'gpt-9'"));
    assertTrue(fails(400, "q", "whales").getMessage().contains("selma.model"), "two models: one must be named");
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.temprature", "1").getMessage()
        .contains("unknown parameter 'selma.temprature'"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.truncation", "sideways").getMessage()
        .contains("selma.truncation"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.order", "random").getMessage()
        .contains("selma.order"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.temperature", "-1").getMessage()
        .contains("selma.temperature"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "many").getMessage()
        .contains("selma.maxNewTokens must be an integer, got 'many'"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.attention", "sparse").getMessage()
        .contains("unknown attention scheme 'sparse' in selma.attention"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.attention", "select-merge",
        "selma.attention.selection", "best").getMessage().contains("selma.attention.selection"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.positions", "reindexed").getMessage()
        .contains("re-indexed positions need scheme select-and-merge"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.attention", "select-merge",
        "selma.attention.blockSize", "24").getMessage().contains("block_size must be a power of two"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.positions", "self-extend",
        "selma.positions.window", "5000").getMessage().contains("trained window of 4096"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.cache", "sometimes").getMessage()
        .contains("unknown cache mode 'sometimes' in selma.cache"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.fields", "nosuchfield").getMessage()
        .contains("unknown field 'nosuchfield'"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.fields", "_version_").getMessage()
        .contains("not stored"));
    assertTrue(fails(400, "q", "whales", "selma.model", "tiny", "selma.budget", "100", "selma.maxNewTokens", "100")
        .getMessage().contains("no room"));
    assertTrue(fails(400, "selma.model", "tiny").getMessage().contains("no question"));
  }

  @Test
  void anEngineFailureIsA500WithTheCauseAndSolrStaysHealthy() throws Exception {
    BaseHttpSolrClient.RemoteSolrException e = fails(500, "q", "whales", "selma.model", "broken");
    assertTrue(e.getMessage().contains("could not be loaded") && e.getMessage().contains("broken.gguf"),
        e.getMessage());
    ModifiableSolrParams select = new ModifiableSolrParams();
    select.set("q", "whales");
    assertEquals(2, client.query(CORE, select).getResults().getNumFound());
    assertTrue(ask("q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "2").get("answer") instanceof String);
  }

  @Test
  void parallelRequestsBeyondTheLimitEndWithAnAnswerOrA503() throws Exception {
    int n = 6;
    ExecutorService pool = Executors.newFixedThreadPool(n);
    try {
      List<Future<Object>> futures = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        futures.add(pool.submit(() -> {
          try {
            return ask("q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "400", "selma.temperature", "1",
                "selma.seed", "3").get("answer");
          } catch (BaseHttpSolrClient.RemoteSolrException e) {
            return e;
          }
        }));
      }
      int answers = 0;
      int busy = 0;
      for (Future<Object> f : futures) {
        Object r = f.get(120, TimeUnit.SECONDS);
        if (r instanceof String) {
          answers++;
        } else {
          BaseHttpSolrClient.RemoteSolrException e = (BaseHttpSolrClient.RemoteSolrException) r;
          assertEquals(503, e.code(), e.getMessage());
          assertTrue(e.getMessage().contains("is busy"), e.getMessage());
          busy++;
        }
      }
      assertEquals(n, answers + busy);
      assertTrue(answers >= 1, "at least one answered");
      assertTrue(busy >= 1, "at least one refused");
    } finally {
      pool.shutdownNow();
    }
    assertEquals(0, models.slot("tiny").running());
    assertEquals(0, models.slot("tiny").waiting());
  }

  @Test
  void documentReuseReadsADocumentOnceWhateverItsPlaceInThePrompt() throws Exception {
    String[] common = {"q", "whales lighthouses glaciers", "selma.model", "tiny", "selma.maxNewTokens", "2",
        "selma.cache", "documents", "fq", "id:(d0 d1 d2)", "fl", "id"};
    NamedList<Object> ascending = ask(concat(common, "sort", "id asc"));
    NamedList<Object> descending = ask(concat(common, "sort", "id desc"));
    int cachedFirst = cached(ascending), cachedSecond = cached(descending);
    int prompt = (Integer) ((NamedList<?>) descending.get("usage")).get("promptTokens");
    // The second prompt holds the same three documents in the opposite order: their keys and values
    // come from the first, so far more of it is cached than the shared prefix alone.
    assertTrue(cachedSecond > cachedFirst + prompt / 3, cachedFirst + " then " + cachedSecond + " of " + prompt);
    assertEquals(400, fails(400, "q", "whales", "selma.model", "tiny", "selma.cache", "sometimes").code());
  }

  private static int cached(NamedList<Object> rsp) {
    return (Integer) ((NamedList<?>) rsp.get("usage")).get("cachedPromptTokens");
  }

  @Test
  void theTimeLimitStopsAGenerationWithWhatItHas() throws Exception {
    NamedList<Object> rsp = ask("q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "3000", "selma.timeLimit",
        "50", "selma.temperature", "1", "selma.seed", "5");
    assertEquals("timeLimit", rsp.get("finishReason"));
    assertTrue((Integer) ((NamedList<?>) rsp.get("usage")).get("generatedTokens") < 3000);
  }

  @Test
  void aClientThatGoesAwayStopsItsGeneration() throws Exception {
    // HTTP/2: the client aborts its request, which resets the stream.
    long before = metric("selma.clientGone");
    HttpClient http2 = new HttpClient(new HttpClientTransportOverHTTP2(new HTTP2Client()));
    http2.start();
    try {
      Request request = http2.newRequest(jetty.getBaseUrl() + "/" + CORE + "/answer").method(HttpMethod.POST)
          .body(new StringRequestContent("application/x-www-form-urlencoded",
              "q=whales&selma.model=tiny&selma.maxNewTokens=3000&selma.temperature=1&selma.seed=9"));
      request.send(result -> {});
      awaitRunning(1);
      request.abort(new java.util.concurrent.CancellationException("the user went away"));
      awaitRunning(0);
    } finally {
      http2.stop();
    }
    assertEquals(before + 1, metric("selma.clientGone"));
  }

  @Test
  void anHttp1ClientThatClosesItsConnectionStopsItsGeneration() throws Exception {
    long before = metric("selma.clientGone");
    java.net.URL base = jetty.getBaseUrl();
    String body = "q=whales&selma.model=tiny&selma.maxNewTokens=3000&selma.temperature=1&selma.seed=11";
    try (java.net.Socket socket = new java.net.Socket(base.getHost(), base.getPort())) {
      String request = "POST " + base.getPath() + "/" + CORE + "/answer HTTP/1.1\r\n"
          + "Host: " + base.getHost() + ":" + base.getPort() + "\r\n"
          + "Content-Type: application/x-www-form-urlencoded\r\n"
          + "Content-Length: " + body.length() + "\r\n\r\n" + body;
      socket.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      socket.getOutputStream().flush();
      awaitRunning(1);
    }
    awaitRunning(0);
    assertEquals(before + 1, metric("selma.clientGone"));
  }

  private static void awaitRunning(int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (models.slot("tiny").running() != n && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertEquals(n, models.slot("tiny").running());
  }

  @Test
  void metricsAreInSolrsRegistry() throws Exception {
    ask("q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "3");
    assertTrue(metric("selma.requests") >= 1);
    assertTrue(metric("selma.promptTokens") > 0);
    assertTrue(metric("selma.generatedTokens") > 0);
    assertTrue(metric("selma.tokenCountCache.hits") + metric("selma.tokenCountCache.misses") > 0);
  }

  @Test
  void everyCoreOfTheNodeSharesOneRegistryAndModel() throws Exception {
    NamedList<Object> rsp = client.request(answerRequest("q", "moths", "selma.model", "tiny", "selma.maxNewTokens", "2"),
        "more");
    assertEquals("m1", list(rsp, "citations").get(0).get("id"));
    assertSame(models, jetty.getCoreContainer().getObjectCache().get(SelmaModels.KEY));
    ask("q", "whales", "selma.model", "tiny", "selma.maxNewTokens", "2");
    assertSame(models.slot("tiny").current(), models.slot("tiny").current());
  }

  /** A counter or gauge of /answer on core {@value #CORE}, through the metrics API. */
  private static long metric(String name) throws Exception {
    ModifiableSolrParams p = new ModifiableSolrParams();
    p.set("group", "core");
    p.set("prefix", "QUERY./answer." + name);
    QueryRequest r = new QueryRequest(p);
    r.setPath("/admin/metrics");
    NamedList<Object> rsp = client.request(r);
    NamedList<?> metrics = (NamedList<?>) rsp.get("metrics");
    NamedList<?> core = (NamedList<?>) metrics.get("solr.core." + CORE);
    Object v = core.get("QUERY./answer." + name);
    if (v instanceof NamedList<?> nl) {
      v = nl.get("count") != null ? nl.get("count") : nl.get("value");
    }
    return ((Number) v).longValue();
  }
}
