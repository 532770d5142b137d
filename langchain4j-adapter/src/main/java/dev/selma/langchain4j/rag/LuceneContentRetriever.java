package dev.selma.langchain4j.rag;

import dev.langchain4j.model.TokenCountEstimator;
import dev.langchain4j.rag.content.Content;
import dev.langchain4j.rag.content.retriever.ContentRetriever;
import dev.langchain4j.rag.query.Query;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.IndexableField;
import org.apache.lucene.queryparser.classic.MultiFieldQueryParser;
import org.apache.lucene.queryparser.classic.ParseException;
import org.apache.lucene.queryparser.classic.QueryParser;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.SearcherManager;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;

/**
 * A LangChain4j {@link ContentRetriever} over a local Lucene index: whole documents, best first,
 * within a token budget, with the same content shape as {@link SolrContentRetriever} (text segment
 * metadata {@code id}, {@code title}, {@code score}, {@code tokens}; {@code ContentMetadata.SCORE}).
 * The query text is searched as words (query syntax escaped) over {@code queryFields}, any word
 * matching. The index is reopened when it changes (near-real-time through {@link SearcherManager}).
 */
public final class LuceneContentRetriever implements ContentRetriever, Closeable {
  private final Directory directory;
  private final boolean ownsDirectory;
  private final SearcherManager searchers;
  private final Analyzer analyzer;
  private final String idField;
  private final String titleField;
  private final String textField;
  private final String[] queryFields;
  private final int maxResults;
  private final Integer maxTokens;
  private final Double minScore;
  private final TokenCountEstimator tokens;

  private LuceneContentRetriever(Builder b) {
    if ((b.directory == null) == (b.indexPath == null)) {
      throw new IllegalArgumentException(b.directory == null ? "set directory or indexPath"
          : "set either directory or indexPath, not both");
    }
    if (b.maxResults < 1) {
      throw new IllegalArgumentException("maxResults must be >= 1, got " + b.maxResults);
    }
    DocumentHit.checkBudget(b.maxTokens, b.tokens);
    this.idField = b.idField;
    this.titleField = b.titleField;
    this.textField = Objects.requireNonNull(b.textField, "textField");
    this.queryFields = b.queryFields != null ? b.queryFields.toArray(String[]::new)
        : titleField == null ? new String[] {textField} : new String[] {titleField, textField};
    this.analyzer = b.analyzer != null ? b.analyzer : new StandardAnalyzer();
    this.maxResults = b.maxResults;
    this.maxTokens = b.maxTokens;
    this.minScore = b.minScore;
    this.tokens = b.tokens;
    try {
      this.ownsDirectory = b.directory == null;
      this.directory = b.directory != null ? b.directory : FSDirectory.open(b.indexPath);
      this.searchers = new SearcherManager(directory, null);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open the Lucene index " + (b.indexPath != null ? b.indexPath
          : b.directory) + ": " + e.getMessage(), e);
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public List<Content> retrieve(Query query) {
    String text = query.text().strip();
    if (text.isEmpty()) {
      return List.of();
    }
    MultiFieldQueryParser parser = new MultiFieldQueryParser(queryFields, analyzer);
    parser.setDefaultOperator(QueryParser.Operator.OR);
    org.apache.lucene.search.Query q;
    try {
      q = parser.parse(QueryParser.escape(text));
    } catch (ParseException e) {
      throw new IllegalArgumentException("cannot search for '" + text + "': " + e.getMessage(), e);
    }
    try {
      searchers.maybeRefresh();
      IndexSearcher searcher = searchers.acquire();
      try {
        TopDocs top = searcher.search(q, maxResults);
        List<DocumentHit> hits = new ArrayList<>();
        for (ScoreDoc sd : top.scoreDocs) {
          if (minScore != null && sd.score < minScore) {
            continue;
          }
          Document d = searcher.storedFields().document(sd.doc);
          String body = joined(d.getFields(textField));
          if (body == null) {
            continue;
          }
          hits.add(new DocumentHit(d.get(idField), titleField == null ? null : joined(d.getFields(titleField)),
              body, sd.score));
        }
        return DocumentHit.pack(hits, maxTokens, tokens);
      } finally {
        searchers.release(searcher);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("Lucene search failed: " + e.getMessage(), e);
    }
  }

  private static String joined(IndexableField[] fields) {
    List<String> values = new ArrayList<>();
    for (IndexableField f : fields) {
      if (f.stringValue() != null) {
        values.add(f.stringValue());
      }
    }
    return values.isEmpty() ? null : String.join("\n\n", values);
  }

  /** Closes the searchers, and the directory if this retriever opened it from a path. */
  @Override
  public void close() throws IOException {
    searchers.close();
    if (ownsDirectory) {
      directory.close();
    }
  }

  /** Builds a {@link LuceneContentRetriever}. */
  public static final class Builder {
    private Directory directory;
    private Path indexPath;
    private Analyzer analyzer;
    private String idField = "id";
    private String titleField = "title";
    private String textField = "text";
    private List<String> queryFields;
    private int maxResults = 10;
    private Integer maxTokens;
    private Double minScore;
    private TokenCountEstimator tokens;

    /** An open index directory (not closed by the retriever). */
    public Builder directory(Directory directory) {
      this.directory = directory;
      return this;
    }

    /** An index folder; the retriever opens and closes it. */
    public Builder indexPath(Path indexPath) {
      this.indexPath = indexPath;
      return this;
    }

    /** The analyzer the text was indexed with; default {@link StandardAnalyzer}. */
    public Builder analyzer(Analyzer analyzer) {
      this.analyzer = analyzer;
      return this;
    }

    /** Stored id field; default {@code id}. */
    public Builder idField(String idField) {
      this.idField = Objects.requireNonNull(idField);
      return this;
    }

    /** Stored title field; default {@code title}; null for none. */
    public Builder titleField(String titleField) {
      this.titleField = titleField;
      return this;
    }

    /** Stored field holding the whole text; default {@code text}. */
    public Builder textField(String textField) {
      this.textField = textField;
      return this;
    }

    /** Fields searched; default title and text fields. */
    public Builder queryFields(List<String> queryFields) {
      this.queryFields = queryFields;
      return this;
    }

    /** The most documents to fetch; default 10. */
    public Builder maxResults(int maxResults) {
      this.maxResults = maxResults;
      return this;
    }

    /** Token budget of all returned texts together (needs a token count estimator); default none. */
    public Builder maxTokens(Integer maxTokens) {
      this.maxTokens = maxTokens;
      return this;
    }

    /** Leaves out documents scoring below this; default none. */
    public Builder minScore(Double minScore) {
      this.minScore = minScore;
      return this;
    }

    /** Counts tokens for the budget and the {@code tokens} metadata, e.g. {@code SelmaTokenCountEstimator}. */
    public Builder tokenCountEstimator(TokenCountEstimator tokens) {
      this.tokens = tokens;
      return this;
    }

    public LuceneContentRetriever build() {
      return new LuceneContentRetriever(this);
    }
  }
}
