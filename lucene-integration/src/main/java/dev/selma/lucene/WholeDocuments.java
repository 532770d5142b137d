package dev.selma.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.DocumentStoredFieldVisitor;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.ReaderUtil;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TopDocs;

/** Loads the whole stored text of top documents. */
public final class WholeDocuments {
  private WholeDocuments() {}

  /** Runs {@code query} and loads its top {@code n} documents, best first. */
  public static List<RetrievedDocument> top(IndexSearcher searcher, Query query, int n, DocumentFields fields)
      throws IOException {
    TopDocs top = searcher.search(query, n);
    return load(searcher, top.scoreDocs, fields);
  }

  /**
   * Loads the given hits in the given order. Documents without a stored id are skipped (they cannot be
   * cited); a document without text keeps an empty text.
   */
  public static List<RetrievedDocument> load(IndexSearcher searcher, ScoreDoc[] hits, DocumentFields fields)
      throws IOException {
    List<LeafReaderContext> leaves = searcher.getIndexReader().leaves();
    StoredFields stored = searcher.storedFields();
    List<RetrievedDocument> docs = new ArrayList<>(hits.length);
    for (ScoreDoc hit : hits) {
      DocumentStoredFieldVisitor visitor = new DocumentStoredFieldVisitor(fields.all());
      stored.document(hit.doc, visitor);
      Document d = visitor.getDocument();
      String id = d.get(fields.idField());
      if (id == null) {
        continue;
      }
      LeafReaderContext leaf = leaves.get(ReaderUtil.subIndex(hit.doc, leaves));
      IndexReader.CacheHelper core = leaf.reader().getCoreCacheHelper();
      Object version = core == null ? null : new RetrievedDocument.SegmentDoc(core.getKey(), hit.doc - leaf.docBase,
          fields.textFields());
      docs.add(new RetrievedDocument(id, d.get(fields.titleField()), joinText(d, fields), hit.score, version));
    }
    return docs;
  }

  private static String joinText(Document d, DocumentFields fields) {
    List<String> parts = new ArrayList<>();
    for (String f : fields.textFields()) {
      for (String v : d.getValues(f)) {
        if (!v.isEmpty()) {
          parts.add(v);
        }
      }
    }
    return String.join("\n\n", parts);
  }
}
