package dev.selma.lucene;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.tokenizer.Tokenizer;
import dev.selma.testmodels.TestModels;
import java.util.List;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.document.TextField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.store.ByteBuffersDirectory;
import org.junit.jupiter.api.Test;

class WholeDocumentsTest {
  private static final DocumentFields FIELDS = DocumentFields.of("id", "title", "body", "notes");

  private static Document doc(String id, String title, String body, String... notes) {
    Document d = new Document();
    d.add(new StringField("id", id, Field.Store.YES));
    d.add(new StoredField("title", title));
    d.add(new TextField("body", body, Field.Store.YES));
    for (String n : notes) {
      d.add(new TextField("notes", n, Field.Store.YES));
    }
    return d;
  }

  @Test
  void loadsWholeTextOfSeveralFieldsBestFirstAndCachesTokenCountsPerSegmentVersion() throws Exception {
    Tokenizer tokenizer = Tokenizer.fromHuggingFace(TestModels.mistralVocabulary());
    TokenCounts counts = new TokenCounts(tokenizer, 1000);
    String longBody = "whale ".repeat(5000) + "the end of a long body";
    try (ByteBuffersDirectory dir = new ByteBuffersDirectory();
        IndexWriter w = new IndexWriter(dir, new IndexWriterConfig(new StandardAnalyzer()))) {
      w.addDocument(doc("a", "Alpha", longBody, "first note", "second note"));
      w.addDocument(doc("b", "Beta", "a whale and a ship"));
      w.addDocument(doc("c", "Gamma", "no match here"));
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(w)) {
        IndexSearcher s = new IndexSearcher(r);
        counts.watch(r);
        List<RetrievedDocument> docs = WholeDocuments.top(s, new TermQuery(new Term("body", "whale")), 10, FIELDS);
        assertEquals(2, docs.size());
        RetrievedDocument a = docs.stream().filter(d -> d.id().equals("a")).findFirst().orElseThrow();
        assertEquals(longBody + "\n\nfirst note\n\nsecond note", a.text(), "whole stored text, fields in order");
        assertEquals("Alpha", a.title());
        assertInstanceOf(RetrievedDocument.SegmentDoc.class, a.version());
        assertTrue(docs.get(0).score() >= docs.get(1).score());

        int n = counts.count(a);
        assertEquals(tokenizer.encode(a.text(), false).length, n);
        assertEquals(n, counts.count(a));
        assertEquals(1, counts.hits());
        assertEquals(1, counts.misses());
        // The same document read again is the same version: a hit.
        RetrievedDocument again = WholeDocuments.top(s, new TermQuery(new Term("id", "a")), 1, FIELDS).get(0);
        assertEquals(a.version(), again.version());
        counts.count(again);
        assertEquals(2, counts.hits());
      }
      // An update writes a new version in a new segment: a new key, counted afresh.
      w.updateDocument(new Term("id", "a"), doc("a", "Alpha", "a whale, rewritten"));
      w.commit();
      try (DirectoryReader r = DirectoryReader.open(w)) {
        IndexSearcher s = new IndexSearcher(r);
        counts.watch(r);
        RetrievedDocument a2 = WholeDocuments.top(s, new TermQuery(new Term("id", "a")), 1, FIELDS).get(0);
        assertEquals(tokenizer.encode("a whale, rewritten", false).length, counts.count(a2));
        assertEquals(2, counts.misses());
      }
      // Merging away the old segments closes their cores: their entries go.
      w.forceMerge(1);
      w.commit();
    }
    assertEquals(0, counts.size(), "entries of closed segments are dropped");
  }

  @Test
  void withoutAVersionTheTextIsTheKey() throws Exception {
    TokenCounts counts = new TokenCounts(Tokenizer.fromHuggingFace(TestModels.mistralVocabulary()), 10);
    RetrievedDocument x = new RetrievedDocument("x", "", "some text", 1f, null);
    RetrievedDocument y = new RetrievedDocument("y", "", "some text", 1f, null);
    RetrievedDocument z = new RetrievedDocument("z", "", "other text", 1f, null);
    counts.count(x);
    counts.count(y);
    assertEquals(1, counts.hits());
    assertNotEquals(0, counts.count(z));
    assertEquals(2, counts.misses());
  }
}
