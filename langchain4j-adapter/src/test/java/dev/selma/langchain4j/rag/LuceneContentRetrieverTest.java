package dev.selma.langchain4j.rag;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.TokenCountEstimator;
import dev.langchain4j.rag.AugmentationRequest;
import dev.langchain4j.rag.AugmentationResult;
import dev.langchain4j.rag.DefaultRetrievalAugmentor;
import dev.langchain4j.rag.content.Content;
import dev.langchain4j.rag.content.ContentMetadata;
import dev.langchain4j.rag.query.Metadata;
import dev.langchain4j.rag.query.Query;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.StringField;
import org.apache.lucene.document.TextField;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.store.FSDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link LuceneContentRetriever} over an index on disk, alone and inside a retrieval augmentor. */
class LuceneContentRetrieverTest {
  @TempDir
  Path index;

  /** One token per whitespace-separated word: enough to check the budget arithmetic. */
  static final TokenCountEstimator WORDS = new TokenCountEstimator() {
    @Override
    public int estimateTokenCountInText(String text) {
      return text.isBlank() ? 0 : text.strip().split("\\s+").length;
    }

    @Override
    public int estimateTokenCountInMessage(ChatMessage message) {
      throw new UnsupportedOperationException();
    }

    @Override
    public int estimateTokenCountInMessages(Iterable<ChatMessage> messages) {
      throw new UnsupportedOperationException();
    }
  };

  private void write(List<TestDocuments.Doc> docs) throws IOException {
    try (FSDirectory dir = FSDirectory.open(index);
        IndexWriter w = new IndexWriter(dir, new IndexWriterConfig(new StandardAnalyzer()))) {
      for (TestDocuments.Doc d : docs) {
        Document doc = new Document();
        doc.add(new StringField("id", d.id(), Field.Store.YES));
        doc.add(new TextField("title", d.title(), Field.Store.YES));
        doc.add(new TextField("text", d.text(), Field.Store.YES));
        w.addDocument(doc);
      }
    }
  }

  @Test
  void wholeDocumentsBestFirstWithinTheBudget() throws IOException {
    write(TestDocuments.ALL);
    try (LuceneContentRetriever r = LuceneContentRetriever.builder().indexPath(index).build()) {
      List<Content> all = r.retrieve(Query.from("lighthouse Gull Rock"));
      assertEquals(List.of("gull-rock", "almanac"), ids(all));
      Content first = all.get(0);
      assertEquals(TestDocuments.LIGHTHOUSE.text(), first.textSegment().text());
      assertEquals(TestDocuments.LIGHTHOUSE.title(), first.textSegment().metadata().getString("title"));
      assertEquals(first.textSegment().metadata().getDouble("score"), first.metadata().get(ContentMetadata.SCORE));
      assertTrue((Double) all.get(0).metadata().get(ContentMetadata.SCORE)
          > (Double) all.get(1).metadata().get(ContentMetadata.SCORE));
    }
    int lighthouse = WORDS.estimateTokenCountInText(TestDocuments.LIGHTHOUSE.text());
    int almanac = WORDS.estimateTokenCountInText(TestDocuments.LONG.text());
    try (LuceneContentRetriever r = LuceneContentRetriever.builder().indexPath(index).maxTokens(lighthouse)
        .tokenCountEstimator(WORDS).build()) {
      List<Content> fit = r.retrieve(Query.from("the lighthouse keepers"));
      assertEquals(List.of("gull-rock"), ids(fit), "the almanac ranks first but does not fit");
      assertEquals(lighthouse, fit.get(0).textSegment().metadata().getInteger("tokens"));
    }
    try (LuceneContentRetriever r = LuceneContentRetriever.builder().indexPath(index)
        .maxTokens(lighthouse + almanac).tokenCountEstimator(WORDS).maxResults(2).build()) {
      assertEquals(List.of("almanac", "gull-rock"), ids(r.retrieve(Query.from("the lighthouse keepers"))));
    }
    assertThrows(IllegalArgumentException.class, () -> LuceneContentRetriever.builder().indexPath(index)
        .maxTokens(10).build(), "a budget needs a token counter");
  }

  @Test
  void queryTextIsWordsAndAnAugmentorUsesIt() throws IOException {
    write(TestDocuments.ALL);
    try (LuceneContentRetriever r = LuceneContentRetriever.builder().indexPath(index).build()) {
      assertEquals("canal", ids(r.retrieve(Query.from("canal AND (coal OR \"barges:"))).get(0));
      assertEquals(List.of(), r.retrieve(Query.from("zeppelin")));
      try (LuceneContentRetriever strict = LuceneContentRetriever.builder().indexPath(index).minScore(0.5).build()) {
        assertEquals(List.of("millbrook"), ids(strict.retrieve(Query.from("orchard apple"))));
      }

      DefaultRetrievalAugmentor augmentor = DefaultRetrievalAugmentor.builder().contentRetriever(r)
          .contentInjector(new DocumentsContentInjector()).build();
      UserMessage question = UserMessage.from("Which orchard grows apples?");
      AugmentationResult result = augmentor.augment(new AugmentationRequest(question,
          Metadata.from(question, null, List.of(SystemMessage.from("sys"), question))));
      String text = ((UserMessage) result.chatMessage()).singleText();
      assertTrue(text.startsWith("Documents:\n\n[doc 1] id: millbrook | title: The Millbrook Orchard\n"
          + TestDocuments.ORCHARD.text() + "\n\n"), text);
      assertTrue(text.endsWith("\n\nQuestion: Which orchard grows apples?"), text);
    }
  }

  private static List<String> ids(List<Content> contents) {
    return contents.stream().map(c -> c.textSegment().metadata().getString("id")).toList();
  }
}
