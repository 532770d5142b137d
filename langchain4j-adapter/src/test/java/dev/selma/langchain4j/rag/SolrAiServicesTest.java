package dev.selma.langchain4j.rag;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.listener.ChatModelRequestContext;
import dev.langchain4j.model.chat.listener.ChatModelResponseContext;
import dev.langchain4j.rag.DefaultRetrievalAugmentor;
import dev.langchain4j.rag.content.Content;
import dev.langchain4j.rag.content.ContentMetadata;
import dev.langchain4j.rag.query.Query;
import dev.langchain4j.service.AiServices;
import dev.selma.engine.Engine;
import dev.selma.langchain4j.SelmaChatModel;
import dev.selma.langchain4j.SelmaTokenCountEstimator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.solr.client.solrj.SolrClient;
import org.apache.solr.common.SolrInputDocument;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real Solr (one Jetty node, one core) serves whole documents to {@link SolrContentRetriever}; an
 * {@code AiServices} interface answers through a {@link DefaultRetrievalAugmentor} with the
 * {@link DocumentsContentInjector} and a Selma chat model: a random-weight one to check the plumbing
 * (the retrieved documents reach the prompt in the demo layout, the service returns the model's
 * answer), and the bundled demo model to check that the answer is the fact the documents state.
 */
class SolrAiServicesTest {
  static final String SYSTEM = "Answer the question from the documents. Quote the sentence that answers it.";

  @TempDir
  static Path home;
  static JettySolrRunner solr;
  static SolrClient client;
  static Engine engine;

  interface Librarian {
    @dev.langchain4j.service.SystemMessage(SYSTEM)
    String answer(String question);
  }

  @BeforeAll
  static void start() throws Exception {
    Path source = Path.of(SolrAiServicesTest.class.getResource("/solr-home/solr.xml").toURI()).getParent();
    try (var files = Files.walk(source)) {
      for (Path p : files.toList()) {
        Path target = home.resolve(source.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else {
          Files.copy(p, target);
        }
      }
    }
    solr = new JettySolrRunner(home.toString(), JettyConfig.builder().setPort(0).build());
    solr.start();
    client = solr.newClient();
    for (TestDocuments.Doc d : TestDocuments.ALL) {
      SolrInputDocument doc = new SolrInputDocument();
      doc.addField("id", d.id());
      doc.addField("title", d.title());
      doc.addField("text", d.text());
      client.add("docs", doc);
    }
    client.commit("docs");
    engine = dev.selma.langchain4j.TestModelsAccess.load(1024);
  }

  @AfterAll
  static void stop() throws Exception {
    if (engine != null) {
      engine.close();
    }
    if (client != null) {
      client.close();
    }
    if (solr != null) {
      solr.stop();
    }
  }

  private static SolrContentRetriever.Builder retriever() {
    return SolrContentRetriever.builder().baseUrl(solr.getBaseUrl().toString()).collection("docs");
  }

  @Test
  void returnsWholeDocumentsBestFirstWithMetadata() throws IOException {
    try (SolrContentRetriever r = retriever().maxResults(5).build()) {
      List<Content> contents = r.retrieve(Query.from("When was the lighthouse on Gull Rock built?"));
      List<String> ids = contents.stream().map(c -> c.textSegment().metadata().getString("id")).toList();
      assertEquals(4, ids.size(), "any word matches, so every document does (\"the\")");
      assertTrue(ids.subList(0, 2).containsAll(List.of("gull-rock", "almanac")), ids.toString());
      Content lighthouse = contents.get(ids.indexOf("gull-rock"));
      assertEquals(TestDocuments.LIGHTHOUSE.text(), lighthouse.textSegment().text());
      assertEquals(TestDocuments.LIGHTHOUSE.title(), lighthouse.textSegment().metadata().getString("title"));
      double score = lighthouse.textSegment().metadata().getDouble("score");
      assertEquals(score, (Double) lighthouse.metadata().get(ContentMetadata.SCORE));
      for (int i = 1; i < contents.size(); i++) {
        assertTrue((Double) contents.get(i - 1).metadata().get(ContentMetadata.SCORE)
            >= (Double) contents.get(i).metadata().get(ContentMetadata.SCORE));
      }
    }
  }

  @Test
  void keepsToTheTokenBudget() throws IOException {
    SelmaTokenCountEstimator tokens = new SelmaTokenCountEstimator(engine);
    int lighthouse = tokens.estimateTokenCountInText(TestDocuments.LIGHTHOUSE.text());
    try (SolrContentRetriever r = retriever().maxTokens(lighthouse + 10).tokenCountEstimator(tokens).build()) {
      List<Content> contents = r.retrieve(Query.from("lighthouse Gull Rock"));
      assertEquals(List.of("gull-rock"), contents.stream().map(c -> c.textSegment().metadata().getString("id"))
          .toList(), "the almanac does not fit the budget; the lighthouse document does");
      assertEquals(lighthouse, contents.get(0).textSegment().metadata().getInteger("tokens"));
    }
    assertThrows(IllegalArgumentException.class, () -> retriever().maxTokens(100).build());
  }

  @Test
  void searchesWordsNotQuerySyntax() throws IOException {
    try (SolrContentRetriever r = retriever().build()) {
      assertEquals("canal", r.retrieve(Query.from("canal AND (coal OR \"barges:")).get(0).textSegment()
          .metadata().getString("id"));
      assertEquals("orchard\\:apple \\(1802\\)", SolrContentRetriever.escapeWords("  orchard:apple  (1802) "));
    }
  }

  @Test
  void anAiServiceAnswersFromDocumentsRetrievedFromSolr() throws IOException {
    AtomicReference<List<ChatMessage>> sent = new AtomicReference<>();
    AtomicReference<String> answered = new AtomicReference<>();
    ChatModelListener capture = new ChatModelListener() {
      @Override
      public void onRequest(ChatModelRequestContext context) {
        sent.set(context.chatRequest().messages());
      }

      @Override
      public void onResponse(ChatModelResponseContext context) {
        answered.set(context.chatResponse().aiMessage().text());
      }
    };
    SelmaTokenCountEstimator tokens = new SelmaTokenCountEstimator(engine);
    String question = "When was the lighthouse on Gull Rock built?";
    try (SolrContentRetriever retriever = retriever().maxResults(3).maxTokens(300).tokenCountEstimator(tokens)
        .build()) {
      SelmaChatModel model = SelmaChatModel.builder().engine(engine).maxOutputTokens(16)
          .listeners(List.of(capture)).build();
      Librarian librarian = AiServices.builder(Librarian.class)
          .chatModel(model)
          .retrievalAugmentor(DefaultRetrievalAugmentor.builder()
              .contentRetriever(retriever)
              .contentInjector(new DocumentsContentInjector())
              .build())
          .build();

      String answer = librarian.answer(question);

      List<ChatMessage> messages = sent.get();
      assertEquals(2, messages.size());
      assertEquals(SYSTEM, ((SystemMessage) messages.get(0)).text());
      String expected = DocumentsContentInjector.format(retriever.retrieve(Query.from(question)), question);
      assertEquals(expected, ((UserMessage) messages.get(1)).singleText());
      assertTrue(expected.startsWith("Documents:\n\n[doc 1] id: gull-rock | title: The Lighthouse on Gull Rock\n"
          + TestDocuments.LIGHTHOUSE.text() + "\n\n"), expected);
      assertTrue(expected.endsWith("\n\nQuestion: " + question), expected);
      assertFalse(expected.contains("almanac"), "over the token budget");
      assertEquals(answered.get(), answer);
      assertFalse(answer.isEmpty());
    }
  }

  @Test
  void theDemoModelAnswersFromDocumentsRetrievedFromSolr() throws IOException {
    try (Engine demo = Engine.load(dev.selma.engine.EngineOptions.of(Path.of("../demo-corpus/selma-demo.gguf"))
            .withThreads(2).withContextLength(4096));
        SolrContentRetriever retriever = retriever().maxResults(2).maxTokens(1000)
            .tokenCountEstimator(new SelmaTokenCountEstimator(demo)).build()) {
      Librarian librarian = AiServices.builder(Librarian.class)
          .chatModel(SelmaChatModel.builder().engine(demo).maxOutputTokens(24).build())
          .retrievalAugmentor(DefaultRetrievalAugmentor.builder()
              .contentRetriever(retriever)
              .contentInjector(new DocumentsContentInjector())
              .build())
          .build();
      // Scored like the demo's questions: the value must be there (the 13M-parameter model copies the
      // rest of the sentence less reliably than the number).
      String answer = librarian.answer("What is the lamp code of the Gull Rock lighthouse?");
      assertTrue(answer.startsWith("The lamp code of the Gull Rock") && answer.contains(" is 48213."), answer);
    }
  }
}
