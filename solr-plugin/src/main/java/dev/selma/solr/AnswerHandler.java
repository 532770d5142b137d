package dev.selma.solr;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Timer;
import dev.selma.engine.attention.AttentionStats;
import dev.selma.engine.generate.CancellationToken;
import dev.selma.engine.generate.DocumentReuse;
import dev.selma.engine.generate.GenerationListener;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.Usage;
import dev.selma.lucene.AssembledPrompt;
import dev.selma.lucene.Citation;
import dev.selma.lucene.DocumentFields;
import dev.selma.lucene.OmittedDocument;
import dev.selma.lucene.PromptAssembler;
import dev.selma.lucene.RetrievedDocument;
import dev.selma.lucene.WholeDocuments;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.apache.lucene.search.ScoreDoc;
import org.apache.solr.common.SolrDocument;
import org.apache.solr.common.SolrDocumentList;
import org.apache.solr.common.SolrException;
import org.apache.solr.common.SolrException.ErrorCode;
import org.apache.solr.common.params.CommonParams;
import org.apache.solr.common.params.ModifiableSolrParams;
import org.apache.solr.common.params.ShardParams;
import org.apache.solr.common.params.SolrParams;
import org.apache.solr.common.util.NamedList;
import org.apache.solr.common.util.SimpleOrderedMap;
import org.apache.solr.core.SolrCore;
import org.apache.solr.handler.component.SearchHandler;
import org.apache.solr.metrics.SolrMetricsContext;
import org.apache.solr.request.SolrQueryRequest;
import org.apache.solr.response.BasicResultContext;
import org.apache.solr.response.ResultContext;
import org.apache.solr.response.SolrQueryResponse;
import org.apache.solr.search.DocIterator;
import org.apache.solr.search.DocList;
import org.apache.solr.search.ReturnFields;
import org.apache.solr.search.SolrReturnFields;

/**
 * {@code /answer}: runs the normal search of this handler's components (q, fq, rows, defType, sort ...,
 * distributed over the shards in SolrCloud), reads the whole stored text of the top documents, packs
 * them into the model's token budget, generates an answer and returns {@code answer},
 * {@code citations}, {@code omitted}, {@code usage} and {@code timing} beside the usual result list.
 * Parameters are {@link AnswerParams}; their defaults come from the handler's {@code defaults} in
 * {@code solrconfig.xml}. Models are the node's ({@link SelmaModels}). Authorization: as a search
 * handler it asks for the predefined {@code read} permission; a custom permission on its path can
 * narrow it (see the README).
 */
public class AnswerHandler extends SearchHandler {
  /** The answer when the search found nothing; no prompt is built and nothing is generated. */
  public static final String NO_DOCUMENTS =
      "No documents matched the query, so there is nothing to answer from.";

  private volatile SelmaModels models;
  private Counter requests;
  private Counter errors;
  private Counter rejected;
  private Counter noDocuments;
  private Counter timeLimited;
  private Counter clientGone;
  private Counter promptTokens;
  private Counter cachedPromptTokens;
  private Counter generatedTokens;
  private Timer prefill;
  private Timer decode;
  private Timer queue;

  @Override
  public void inform(SolrCore core) {
    super.inform(core);
    models = SelmaModels.of(core.getCoreContainer());
  }

  @Override
  public String getDescription() {
    return "Selma: answers questions from the whole text of the top documents, with citations";
  }

  @Override
  public void initializeMetrics(SolrMetricsContext parentContext, String scope) {
    super.initializeMetrics(parentContext, scope);
    SolrMetricsContext m = getSolrMetricsContext();
    String c = getCategory().toString();
    requests = m.counter("selma.requests", c, scope);
    errors = m.counter("selma.errors", c, scope);
    rejected = m.counter("selma.rejected", c, scope);
    noDocuments = m.counter("selma.noDocuments", c, scope);
    timeLimited = m.counter("selma.timeLimited", c, scope);
    clientGone = m.counter("selma.clientGone", c, scope);
    promptTokens = m.counter("selma.promptTokens", c, scope);
    cachedPromptTokens = m.counter("selma.cachedPromptTokens", c, scope);
    generatedTokens = m.counter("selma.generatedTokens", c, scope);
    prefill = m.timer("selma.prefill", c, scope);
    decode = m.timer("selma.decode", c, scope);
    queue = m.timer("selma.queueWait", c, scope);
    m.gauge(() -> models == null ? 0L : models.tokenCountHits(), true, "selma.tokenCountCache.hits", c, scope);
    m.gauge(() -> models == null ? 0L : models.tokenCountMisses(), true, "selma.tokenCountCache.misses", c, scope);
  }

  @Override
  public void handleRequestBody(SolrQueryRequest req, SolrQueryResponse rsp) throws Exception {
    if (req.getParams().getBool(ShardParams.IS_SHARD, false)) {
      // A shard's part of a distributed /answer: search only; the node that was asked generates.
      super.handleRequestBody(req, rsp);
      return;
    }
    if (requests != null) {
      requests.inc();
    }
    try {
      answer(req, rsp);
    } catch (SolrException e) {
      if (e.code() == ErrorCode.SERVICE_UNAVAILABLE.code) {
        count(rejected);
      } else {
        count(errors);
      }
      throw e;
    } catch (Exception | Error e) {
      count(errors);
      throw e;
    }
  }

  private static void count(Counter c) {
    if (c != null) {
      c.inc();
    }
  }

  private void answer(SolrQueryRequest req, SolrQueryResponse rsp) throws Exception {
    long start = System.nanoTime();
    SelmaModels node = models;
    AnswerParams p = AnswerParams.parse(req.getParams(), req.getSchema(), node);
    ModelSlot slot = node.slot(p.model());
    DocumentFields fields = new DocumentFields(p.idField(), p.titleField(), p.textFields());

    // The normal search, asked for the fields the model reads; the result list keeps the fields asked for.
    SolrParams original = req.getParams();
    ModifiableSolrParams search = new ModifiableSolrParams(original);
    if (original.get(CommonParams.Q) == null) {
      search.set(CommonParams.Q, p.question());
    }
    Set<String> needed = new LinkedHashSet<>(fields.all());
    boolean hasVersion = req.getSchema().getFieldOrNull("_version_") != null;
    if (hasVersion) {
      needed.add("_version_");
    }
    needed.add("score");
    String[] fl = original.getParams(CommonParams.FL);
    List<String> flPlus = new ArrayList<>(fl == null ? List.of("*") : List.of(fl));
    flPlus.add(String.join(",", needed));
    search.set(CommonParams.FL, flPlus.toArray(String[]::new));
    req.setParams(search);
    try {
      super.handleRequestBody(req, rsp);
    } finally {
      req.setParams(original);
    }
    if (rsp.getException() != null) {
      return;
    }
    long searched = System.nanoTime();

    ReturnFields asked = new SolrReturnFields(req);
    List<RetrievedDocument> docs = documents(req, rsp, fields, asked, slot);
    long fetched = System.nanoTime();

    SimpleOrderedMap<Object> timing = new SimpleOrderedMap<>();
    timing.add("searchMs", ms(searched - start));
    timing.add("fetchMs", ms(fetched - searched));
    rsp.add("model", p.model());
    if (docs.isEmpty()) {
      count(noDocuments);
      rsp.add("answer", NO_DOCUMENTS);
      rsp.add("finishReason", "noDocuments");
      rsp.add("citations", List.of());
      rsp.add("omitted", List.of());
      rsp.add("usage", usage(0, 0, 0, 0, 0));
      timing.add("totalMs", ms(System.nanoTime() - start));
      rsp.add("timing", timing);
      return;
    }

    ModelSlot.Loaded model = slot.loaded();
    try {
      if (p.attention() != null) {
        p.attention().validateFor(model.engine().config());
      }
    } catch (IllegalArgumentException e) {
      throw AnswerParams.bad(AnswerParams.ATTENTION + "/" + AnswerParams.POSITIONS + ": " + e.getMessage());
    }
    long queued = System.nanoTime();
    try (ModelSlot.Permit permit = acquire(slot)) {
      long admitted = System.nanoTime();
      if (queue != null) {
        queue.update(admitted - queued, TimeUnit.NANOSECONDS);
      }
      AssembledPrompt prompt;
      try {
        prompt = model.assembler().assemble(new PromptAssembler.Request(p.system(), p.question(), docs, p.budget(),
            p.maxNewTokens(), p.packing()));
      } catch (IllegalArgumentException e) {
        throw AnswerParams.bad(e.getMessage() + " (" + AnswerParams.BUDGET + ", " + AnswerParams.MAX_NEW_TOKENS + ")");
      }
      long assembled = System.nanoTime();
      Generated generated = generate(req, p, model, prompt, node);
      GenerationResult result = generated.result();
      long done = System.nanoTime();

      Usage u = result.usage();
      count(promptTokens, u.promptTokens());
      count(cachedPromptTokens, u.cachedPromptTokens());
      count(generatedTokens, u.generatedTokens());
      if (prefill != null) {
        prefill.update(u.prefillNanos(), TimeUnit.NANOSECONDS);
        decode.update(u.decodeNanos(), TimeUnit.NANOSECONDS);
      }
      rsp.add("answer", result.text().strip());
      rsp.add("finishReason", generated.finishReason());
      Map<Integer, Double> shares = attentionShares(prompt, result);
      rsp.add("citations", citations(prompt.citations(), shares));
      if (!shares.isEmpty()) {
        rsp.add("attended", attended(prompt.citations(), shares));
      }
      rsp.add("omitted", omitted(prompt.omitted()));
      int documentTokens = prompt.citations().stream().mapToInt(Citation::tokens).sum();
      rsp.add("usage", usage(u.promptTokens(), u.cachedPromptTokens(), u.generatedTokens(), documentTokens,
          prompt.promptLimit() + p.maxNewTokens()));
      timing.add("queueMs", ms(admitted - queued));
      timing.add("tokenizeMs", ms(assembled - admitted));
      timing.add("prefillMs", ms(u.prefillNanos()));
      timing.add("decodeMs", ms(u.decodeNanos()));
      timing.add("totalMs", ms(done - start));
      rsp.add("timing", timing);
      if (p.debug()) {
        rsp.add("prompt", prompt.text());
      }
    }
  }

  private ModelSlot.Permit acquire(ModelSlot slot) throws InterruptedException {
    return slot.acquire();
  }

  /** Why a generation stopped early, when something stopped it. */
  private enum Stop {
    TIME_LIMIT,
    CLIENT_GONE
  }

  /** A generation and what stopped it early, if anything did. */
  private record Generated(GenerationResult result, Stop stop) {
    String finishReason() {
      return switch (result.finishReason()) {
        case STOP -> "stop";
        case LENGTH -> "length";
        case CANCELLED -> stop == Stop.TIME_LIMIT ? "timeLimit" : stop == Stop.CLIENT_GONE ? "clientGone" : "cancelled";
      };
    }
  }

  private Generated generate(SolrQueryRequest req, AnswerParams p, ModelSlot.Loaded model,
      AssembledPrompt prompt, SelmaModels node) {
    CancellationToken cancel = new CancellationToken();
    AtomicReference<Stop> why = new AtomicReference<>();
    BooleanSupplier gone = ClientWatch.of(req);
    List<ScheduledFuture<?>> watches = new ArrayList<>();
    if (p.timeLimitMs() > 0) {
      watches.add(node.timers().schedule(() -> {
        why.compareAndSet(null, Stop.TIME_LIMIT);
        cancel.cancel();
      }, p.timeLimitMs(), TimeUnit.MILLISECONDS));
    }
    if (gone != ClientWatch.NEVER) {
      watches.add(node.timers().scheduleWithFixedDelay(() -> {
        if (gone.getAsBoolean()) {
          why.compareAndSet(null, Stop.CLIENT_GONE);
          cancel.cancel();
        }
      }, 100, 100, TimeUnit.MILLISECONDS));
    }
    try {
      GenerationRequest.Builder request = model.engine().request(prompt.ids())
          .maxNewTokens(p.maxNewTokens())
          .sampling(p.sampling())
          .stopSequences(p.stop())
          .cancellation(cancel)
          .listener(new GenerationListener() {})
          .usePrefixCache(!p.cache().equals("off"));
      if (p.cache().equals("documents") && !prompt.documentTexts().isEmpty()) {
        request.documents(DocumentReuse.of(prompt.documentPrefix(), prompt.documentTexts().stream()
            .map(s -> new int[] {s.from(), s.to()}).toArray(int[][]::new)));
      }
      if (p.attention() != null) {
        request.attention(p.attention());
      }
      GenerationResult r = model.engine().generate(request.build());
      if (why.get() == Stop.TIME_LIMIT) {
        count(timeLimited);
      } else if (why.get() == Stop.CLIENT_GONE) {
        count(clientGone);
      }
      return new Generated(r, why.get());
    } catch (IllegalArgumentException e) {
      throw AnswerParams.bad(e.getMessage());
    } catch (RuntimeException | OutOfMemoryError e) {
      throw new SolrException(ErrorCode.SERVER_ERROR, "Selma: generation with model '" + p.model() + "' failed: " + e,
          e);
    } finally {
      watches.forEach(w -> w.cancel(false));
    }
  }

  private List<RetrievedDocument> documents(SolrQueryRequest req, SolrQueryResponse rsp, DocumentFields fields,
      ReturnFields asked, ModelSlot slot) throws java.io.IOException {
    NamedList<Object> values = rsp.getValues();
    int at = values.indexOf("response", 0);
    Object response = at < 0 ? null : values.getVal(at);
    if (response instanceof ResultContext rc) {
      DocList list = rc.getDocList();
      ScoreDoc[] hits = new ScoreDoc[list.size()];
      DocIterator it = list.iterator();
      for (int i = 0; it.hasNext(); i++) {
        int doc = it.nextDoc();
        hits[i] = new ScoreDoc(doc, list.hasScores() ? it.score() : Float.NaN);
      }
      List<RetrievedDocument> docs = WholeDocuments.load(rc.getSearcher(), hits, fields);
      ModelSlot.Loaded loaded = slot.current();
      if (loaded != null) {
        loaded.tokenCounts().watch(rc.getSearcher().getIndexReader());
      }
      // The result list shows the fields the request asked for, not the ones Selma added.
      values.setVal(at, new BasicResultContext(list, asked, rc.getSearcher(), rc.getQuery(), req));
      return docs;
    }
    if (response instanceof SolrDocumentList list) {
      List<RetrievedDocument> docs = new ArrayList<>(list.size());
      for (SolrDocument d : list) {
        Object id = d.getFirstValue(fields.idField());
        if (id == null) {
          continue;
        }
        List<String> parts = new ArrayList<>();
        for (String f : fields.textFields()) {
          Collection<Object> vs = d.getFieldValues(f);
          if (vs != null) {
            vs.stream().map(String::valueOf).filter(s -> !s.isEmpty()).forEach(parts::add);
          }
        }
        Object title = d.getFirstValue(fields.titleField());
        Object score = d.getFirstValue("score");
        Object version = d.getFirstValue("_version_");
        docs.add(new RetrievedDocument(String.valueOf(id), title == null ? "" : String.valueOf(title),
            String.join("\n\n", parts), score instanceof Number n ? n.floatValue() : Float.NaN,
            version instanceof Number v ? new RetrievedDocument.IdVersion(String.valueOf(id), v.longValue(),
                fields.textFields()) : null));
        for (String name : new ArrayList<>(d.getFieldNames())) {
          if (!asked.wantsField(name)) {
            d.removeFields(name);
          }
        }
      }
      return docs;
    }
    return List.of();
  }

  /**
   * Each document's share of the key blocks select-and-merge chose while the prompt was read and the
   * answer written, summed over layers, by document number; empty under dense attention (which
   * chooses nothing).
   */
  private static Map<Integer, Double> attentionShares(AssembledPrompt prompt, GenerationResult result) {
    AttentionStats stats = result.attentionStats();
    if (stats == null) {
      return Map.of();
    }
    Map<Integer, Long> chosen = new LinkedHashMap<>();
    long total = 0;
    for (AssembledPrompt.Span s : prompt.spans()) {
      long n = stats.selections(s.from(), s.to());
      chosen.put(s.n(), n);
      total += n;
    }
    if (total == 0) {
      return Map.of();
    }
    Map<Integer, Double> shares = new LinkedHashMap<>();
    for (Map.Entry<Integer, Long> e : chosen.entrySet()) {
      shares.put(e.getKey(), Math.round(1e4 * e.getValue() / (double) total) / 1e4);
    }
    return shares;
  }

  /** The documents by their share of the attention, most first. */
  private static List<SimpleOrderedMap<Object>> attended(List<Citation> citations, Map<Integer, Double> shares) {
    List<SimpleOrderedMap<Object>> out = new ArrayList<>();
    citations.stream()
        .sorted(Comparator.comparingDouble((Citation c) -> -shares.getOrDefault(c.n(), 0.0)).thenComparingInt(Citation::n))
        .forEach(c -> {
          SimpleOrderedMap<Object> m = new SimpleOrderedMap<>();
          m.add("n", c.n());
          m.add("id", c.id());
          m.add("share", shares.getOrDefault(c.n(), 0.0));
          out.add(m);
        });
    return out;
  }

  private static List<SimpleOrderedMap<Object>> citations(List<Citation> citations, Map<Integer, Double> shares) {
    List<SimpleOrderedMap<Object>> out = new ArrayList<>();
    for (Citation c : citations) {
      SimpleOrderedMap<Object> m = new SimpleOrderedMap<>();
      m.add("n", c.n());
      m.add("id", c.id());
      m.add("title", c.title());
      if (!Float.isNaN(c.score())) {
        m.add("score", c.score());
      }
      m.add("rank", c.rank());
      m.add("tokens", c.tokens());
      m.add("originalTokens", c.originalTokens());
      m.add("truncated", c.truncated());
      if (c.truncated()) {
        m.add("truncation", c.truncation().label());
      }
      if (shares.containsKey(c.n())) {
        m.add("attentionShare", shares.get(c.n()));
      }
      out.add(m);
    }
    return out;
  }

  private static List<SimpleOrderedMap<Object>> omitted(List<OmittedDocument> omitted) {
    List<SimpleOrderedMap<Object>> out = new ArrayList<>();
    for (OmittedDocument o : omitted) {
      SimpleOrderedMap<Object> m = new SimpleOrderedMap<>();
      m.add("id", o.doc().id());
      m.add("rank", o.rank());
      m.add("originalTokens", o.originalTokens());
      m.add("reason", o.reason());
      out.add(m);
    }
    return out;
  }

  private static SimpleOrderedMap<Object> usage(int prompt, int cached, int generated, int documents, int budget) {
    SimpleOrderedMap<Object> m = new SimpleOrderedMap<>();
    m.add("promptTokens", prompt);
    m.add("cachedPromptTokens", cached);
    m.add("generatedTokens", generated);
    m.add("documentTokens", documents);
    m.add("budgetTokens", budget);
    return m;
  }

  private static void count(Counter c, long n) {
    if (c != null) {
      c.inc(n);
    }
  }

  private static double ms(long nanos) {
    return Math.round(nanos / 1e4) / 100.0;
  }
}
