package dev.selma.langchain4j.rag;

import dev.langchain4j.model.TokenCountEstimator;
import dev.langchain4j.rag.content.Content;
import dev.langchain4j.rag.content.retriever.ContentRetriever;
import dev.langchain4j.rag.query.Query;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.stream.Collectors;
import org.apache.solr.client.solrj.SolrClient;
import org.apache.solr.client.solrj.SolrQuery;
import org.apache.solr.client.solrj.SolrServerException;
import org.apache.solr.client.solrj.impl.HttpJdkSolrClient;
import org.apache.solr.client.solrj.response.QueryResponse;
import org.apache.solr.client.solrj.util.ClientUtils;
import org.apache.solr.common.SolrDocument;

/**
 * A LangChain4j {@link ContentRetriever} that searches a Solr collection over HTTP and returns whole
 * documents, best first, within a token budget. Each {@link Content}'s text is a document's whole text
 * field; its text segment metadata hold {@code id}, {@code title} (when the document has one),
 * {@code score} and {@code tokens} (when counted); {@code ContentMetadata.SCORE} holds the score.
 *
 * <p>The query text is searched as words (Solr syntax characters are escaped) with the {@code edismax}
 * parser over {@code queryFields}, any word matching.
 *
 * <pre>{@code
 * ContentRetriever retriever = SolrContentRetriever.builder()
 *     .baseUrl("http://localhost:8983/solr").collection("books")
 *     .textField("text").titleField("title")
 *     .maxResults(20).maxTokens(100_000).tokenCountEstimator(new SelmaTokenCountEstimator(engine))
 *     .build();
 * }</pre>
 */
public final class SolrContentRetriever implements ContentRetriever, Closeable {
  private final SolrClient client;
  private final boolean ownsClient;
  private final String collection;
  private final String idField;
  private final String titleField;
  private final String textField;
  private final List<String> queryFields;
  private final List<String> filterQueries;
  private final int maxResults;
  private final Integer maxTokens;
  private final Double minScore;
  private final TokenCountEstimator tokens;

  private SolrContentRetriever(Builder b) {
    if ((b.client == null) == (b.baseUrl == null)) {
      throw new IllegalArgumentException(b.client == null ? "set solrClient or baseUrl"
          : "set either solrClient or baseUrl, not both");
    }
    if (b.maxResults < 1) {
      throw new IllegalArgumentException("maxResults must be >= 1, got " + b.maxResults);
    }
    DocumentHit.checkBudget(b.maxTokens, b.tokens);
    this.collection = Objects.requireNonNull(b.collection, "collection");
    this.idField = b.idField;
    this.titleField = b.titleField;
    this.textField = Objects.requireNonNull(b.textField, "textField");
    this.queryFields = b.queryFields != null ? List.copyOf(b.queryFields)
        : titleField == null ? List.of(textField) : List.of(titleField, textField);
    this.filterQueries = b.filterQueries == null ? List.of() : List.copyOf(b.filterQueries);
    this.maxResults = b.maxResults;
    this.maxTokens = b.maxTokens;
    this.minScore = b.minScore;
    this.tokens = b.tokens;
    this.ownsClient = b.client == null;
    this.client = b.client != null ? b.client : new HttpJdkSolrClient.Builder(b.baseUrl).build();
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public List<Content> retrieve(Query query) {
    String words = escapeWords(query.text());
    if (words.isEmpty()) {
      return List.of();
    }
    SolrQuery q = new SolrQuery(words);
    q.set("defType", "edismax");
    q.set("qf", String.join(" ", queryFields));
    q.set("q.op", "OR");
    q.setRows(maxResults);
    List<String> fields = new ArrayList<>(List.of(idField, textField, "score"));
    if (titleField != null) {
      fields.add(titleField);
    }
    q.setFields(fields.toArray(String[]::new));
    filterQueries.forEach(q::addFilterQuery);
    QueryResponse response;
    try {
      response = client.query(collection, q);
    } catch (IOException e) {
      throw new UncheckedIOException("Solr query on collection '" + collection + "' failed: " + e.getMessage(), e);
    } catch (SolrServerException e) {
      throw new IllegalStateException("Solr query on collection '" + collection + "' failed: " + e.getMessage(), e);
    }
    List<DocumentHit> hits = new ArrayList<>();
    for (SolrDocument d : response.getResults()) {
      double score = ((Number) d.getFieldValue("score")).doubleValue();
      if (minScore != null && score < minScore) {
        continue;
      }
      String text = joined(d.getFieldValues(textField));
      if (text == null) {
        continue;
      }
      String title = titleField == null ? null : joined(d.getFieldValues(titleField));
      hits.add(new DocumentHit(String.valueOf(d.getFirstValue(idField)), title, text, score));
    }
    return DocumentHit.pack(hits, maxTokens, tokens);
  }

  /** Each whitespace-separated word with Solr's syntax characters escaped. */
  static String escapeWords(String text) {
    return java.util.Arrays.stream(text.strip().split("\\s+"))
        .filter(w -> !w.isEmpty())
        .map(ClientUtils::escapeQueryChars)
        .collect(Collectors.joining(" "));
  }

  private static String joined(Collection<Object> values) {
    if (values == null || values.isEmpty()) {
      return null;
    }
    return values.stream().map(String::valueOf).collect(Collectors.joining("\n\n"));
  }

  /** Closes the Solr client if this retriever made it from a base URL. */
  @Override
  public void close() throws IOException {
    if (ownsClient) {
      client.close();
    }
  }

  /** Builds a {@link SolrContentRetriever}. */
  public static final class Builder {
    private SolrClient client;
    private String baseUrl;
    private String collection;
    private String idField = "id";
    private String titleField = "title";
    private String textField = "text";
    private List<String> queryFields;
    private List<String> filterQueries;
    private int maxResults = 10;
    private Integer maxTokens;
    private Double minScore;
    private TokenCountEstimator tokens;

    /** A SolrJ client to use (not closed by the retriever). */
    public Builder solrClient(SolrClient client) {
      this.client = client;
      return this;
    }

    /** Solr's base URL, e.g. {@code http://localhost:8983/solr}; the retriever makes its own client. */
    public Builder baseUrl(String baseUrl) {
      this.baseUrl = baseUrl;
      return this;
    }

    public Builder collection(String collection) {
      this.collection = collection;
      return this;
    }

    /** Default {@code id}. */
    public Builder idField(String idField) {
      this.idField = Objects.requireNonNull(idField);
      return this;
    }

    /** Default {@code title}; null for collections without titles. */
    public Builder titleField(String titleField) {
      this.titleField = titleField;
      return this;
    }

    /** The stored field holding a document's whole text; default {@code text}. */
    public Builder textField(String textField) {
      this.textField = textField;
      return this;
    }

    /** Fields searched, with optional boosts ({@code title^2}); default title and text fields. */
    public Builder queryFields(List<String> queryFields) {
      this.queryFields = queryFields;
      return this;
    }

    public Builder filterQueries(List<String> filterQueries) {
      this.filterQueries = filterQueries;
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

    public SolrContentRetriever build() {
      return new SolrContentRetriever(this);
    }
  }
}
