package dev.selma.engine.llama;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionStats;
import dev.selma.engine.backend.Logits;
import dev.selma.engine.backend.Token;
import dev.selma.engine.backend.TopLogits;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.kv.KvPage;
import dev.selma.engine.kv.PageKey;
import dev.selma.engine.kv.PagedKvCache;
import dev.selma.engine.kv.PrefixCache;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One token sequence being processed by a {@link Llama}: its KV cache, its activation buffers and the
 * tokens it holds. Not thread-safe; different sequences may run concurrently.
 *
 * <p>With a {@link PrefixCache} the sequence is a chain of pages: it can start from cached pages
 * ({@link #reuseCachedPrefix}) and offers every page it completes to the cache, so that later
 * sequences starting with the same tokens skip them. Each full page is known by the {@link PageKey}
 * of its tokens and of all before it; the sequence holds a pin on every cached page it uses and lets
 * go of it when it truncates the page away or closes.
 *
 * <p>Document reuse (an approximation, opted into per request) places documents' own keys and values
 * at any offset: {@link #documentKv} finds or computes a document's rows as it computes them right
 * after the sequence's prefix, {@link #place} appends them. Pages from the first placed token on are
 * not the exact keys and values of their tokens, so they are never offered under a prompt's key.
 */
public final class Sequence implements AutoCloseable {
  private final Llama model;
  final KvCache cache;
  final Llama.Workspace workspace;
  private final int maxChunk;
  private int[] tokens = new int[64];
  AttentionConfig attention = AttentionConfig.dense();
  AttentionStats attentionStats;
  private PrefixCache prefixCache;
  /** Keys of the first {@link #keyedPages} full pages; {@code pinned[p]}: the cache holds page p for us. */
  private PageKey[] pageKeys = new PageKey[8];
  private boolean[] pinned = new boolean[8];
  private int keyedPages;
  /**
   * Whether tokens held were computed under an attention other than the current one: their pages
   * match no key of the current configuration, so the sequence neither reuses nor offers pages until
   * it is emptied.
   */
  private boolean mixedAttention;
  /**
   * The first token whose keys and values are not what a prefill of the tokens computes, or {@link
   * Integer#MAX_VALUE}: {@linkplain #place placed} from a document's own encoding, or computed by a
   * decode step that chose its blocks with its own query ({@link AttentionConfig#tokenChooses}).
   * From there on the pages are never offered to the prefix cache, and a later prompt keeps none of them.
   */
  private int inexactFrom = Integer.MAX_VALUE;
  /** Counts the writes of the workspace's logits, so that a {@link Logits} knows when it went stale. */
  private long logitsVersion;
  /**
   * The token appended at {@link #pendingAt} by {@link #appendToSample(Token)} before the host had its id,
   * or null: {@link #settle} reads it into {@link #tokens} (and offers the page it may have completed)
   * when the tokens are next needed.
   */
  private Token pending;
  private int pendingAt;

  Sequence(Llama model, KvCache cache, int maxChunk) {
    if (maxChunk < 1) {
      throw new IllegalArgumentException("maxChunk must be >= 1, got " + maxChunk);
    }
    this.model = model;
    this.cache = cache;
    this.maxChunk = maxChunk;
    this.workspace = new Llama.Workspace(model.backend(), model.config(), maxChunk);
    this.attentionStats = new AttentionStats(model.config().numLayers(), attention.blockSize());
  }

  /**
   * Sets how the following tokens attend (a request's choice; dense until set), validated against
   * the model, and starts fresh attention statistics. Tokens already held keep their keys: a cached
   * prefix serves any configuration.
   */
  public void attention(AttentionConfig config) {
    config.validateFor(model.config());
    if (length() > 0 && !config.equals(attention)) {
      mixedAttention = true;
    }
    attention = config;
    attentionStats = new AttentionStats(model.config().numLayers(), config.blockSize());
  }

  public AttentionConfig attention() {
    return attention;
  }

  /** Which key blocks select-and-merge chose since the configuration was last set. */
  public AttentionStats attentionStats() {
    return attentionStats;
  }

  /**
   * Shares this sequence's pages through {@code cache} from now on. The sequence must be empty and its
   * KV cache paged with the cache's page size.
   */
  public void prefixCache(PrefixCache cache) {
    if (length() > 0) {
      throw new IllegalStateException("a prefix cache can only be attached to an empty sequence");
    }
    if (!(this.cache instanceof PagedKvCache paged) || paged.pageTokens() != cache.pageTokens()) {
      throw new IllegalArgumentException("the prefix cache shares pages of " + cache.pageTokens()
          + " tokens but this sequence's KV cache " + (this.cache instanceof PagedKvCache p
              ? "has pages of " + p.pageTokens() + " tokens" : "cannot share pages"));
    }
    if (paged.pageHostBytes() > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("kv_cache.page_tokens " + cache.pageTokens() + " is too large for this model:"
          + " a page would hold " + paged.pageHostBytes() + " bytes, more than 2 GiB");
    }
    this.prefixCache = cache;
  }

  /**
   * Extends the sequence with cached pages that continue {@code prompt}, whose first {@link
   * #length()} tokens must be the ones held; does nothing without a prefix cache or unless the
   * sequence ends at a page boundary it has keyed.
   *
   * @return the tokens now held
   */
  public int reuseCachedPrefix(int[] prompt) {
    settle();
    int held = length();
    if (held > prompt.length || !Arrays.equals(tokens, 0, held, prompt, 0, held)) {
      throw new IllegalArgumentException("the prompt does not start with the " + held + " tokens held");
    }
    int page = prefixCache == null ? 0 : prefixCache.pageTokens();
    if (prefixCache == null || mixedAttention || held != keyedPages * page || held > exactLength()) {
      return held;
    }
    PagedKvCache paged = (PagedKvCache) cache;
    List<PageKey> keys = new ArrayList<>();
    PageKey parent = keyedPages == 0 ? prefixCache.root(paged, attention) : pageKeys[keyedPages - 1];
    int fit = Math.min(prompt.length, capacity());
    for (int from = held; from + page <= fit; from += page) {
      parent = parent.child(prompt, from, page);
      keys.add(parent);
    }
    List<KvPage> found = prefixCache.acquire(keys, paged);
    for (int i = 0; i < found.size(); i++) {
      int start = length();
      paged.attach(found.get(i), page);
      record(start, Arrays.copyOfRange(prompt, start, start + page));
      keyed(keys.get(i), true);
    }
    return length();
  }

  /** Records the key of the next full page, and whether the cache holds it for this sequence. */
  private void keyed(PageKey key, boolean pin) {
    if (keyedPages == pageKeys.length) {
      pageKeys = Arrays.copyOf(pageKeys, keyedPages * 2);
      pinned = Arrays.copyOf(pinned, keyedPages * 2);
    }
    pageKeys[keyedPages] = key;
    pinned[keyedPages++] = pin;
  }

  /** Offers the exact pages completed since the last call to the prefix cache. */
  private void offerFullPages() {
    if (prefixCache == null || mixedAttention) {
      return;
    }
    PagedKvCache paged = (PagedKvCache) cache;
    int page = paged.pageTokens();
    while ((keyedPages + 1) * page <= exactLength()) {
      PageKey parent = keyedPages == 0 ? prefixCache.root(paged, attention) : pageKeys[keyedPages - 1];
      PageKey key = parent.child(tokens, keyedPages * page, page);
      keyed(key, prefixCache.offer(key, paged.share(keyedPages)));
    }
  }

  /** Forgets the keys of pages that are no longer full, releasing the cache's pins on them. */
  private void unkeyFrom(int page) {
    while (keyedPages > page) {
      keyedPages--;
      if (pinned[keyedPages]) {
        pinned[keyedPages] = false;
        prefixCache.release(pageKeys[keyedPages]);
      }
      pageKeys[keyedPages] = null;
    }
  }

  /** Tokens in the sequence. */
  public int length() {
    return cache.length();
  }

  /**
   * Tokens from the start whose keys and values are what a prefill of the tokens computes: all of
   * them, unless documents were {@linkplain #place placed} or a decode step chose by its own query.
   */
  public int exactLength() {
    return Math.min(length(), inexactFrom);
  }

  /** Whether the sequence shares pages through a prefix cache, which document reuse needs. */
  public boolean hasPrefixCache() {
    return prefixCache != null;
  }

  /**
   * The keys and values of the document {@code prompt[from, to)} encoded right after the tokens this
   * sequence holds (the documents' prefix) and nothing else, to {@link #place} it at any offset. They
   * come from the prefix cache; if it does not have them all, the document is encoded here (and
   * forgotten again: the sequence ends as it began) and its pages are offered to the cache. Either
   * way the rows are the same, so what a prompt computes never depends on what the cache held.
   * The result holds cache pages: {@linkplain DocumentKv#close close} it once placed.
   *
   * @throws IllegalStateException without a prefix cache, or unless every token held was computed
   *     here under the current attention
   */
  public DocumentKv documentKv(int[] prompt, int from, int to) {
    settle();
    if (prefixCache == null) {
      throw new IllegalStateException("document reuse needs a prefix cache");
    }
    if (mixedAttention || exactLength() < length()) {
      throw new IllegalStateException("documents are encoded after a prefix computed here under the current attention");
    }
    if (from < 0 || from >= to || to > prompt.length) {
      throw new IllegalArgumentException("document [" + from + ", " + to + ") of a prompt of " + prompt.length
          + " tokens");
    }
    PagedKvCache paged = (PagedKvCache) cache;
    int prefix = length(), page = paged.pageTokens(), n = to - from;
    List<PageKey> keys = new ArrayList<>();
    PageKey parent = prefixCache.documentRoot(paged, attention, this.tokens, prefix);
    for (int at = from; at < to; at += page) {
      parent = parent.child(prompt, at, Math.min(page, to - at));
      keys.add(parent);
    }
    int[] document = Arrays.copyOfRange(prompt, from, to);
    PagedKvCache rows = (PagedKvCache) model.backend().newKvCache(model.config(), n);
    List<KvPage> found = prefixCache.acquireDocument(keys, n, paged);
    if (!found.isEmpty()) {
      DocumentKv cached = new DocumentKv(prefixCache, keys, rows, document, true);
      try {
        for (int i = 0; i < found.size(); i++) {
          rows.attach(found.get(i), Math.min(page, n - i * page));
        }
      } catch (RuntimeException e) {
        cached.close();
        throw e;
      }
      return cached;
    }
    // Encode the document after the prefix alone, offering none of the pages this fills: they hold
    // the prompt "prefix + document", which no request sent.
    try {
      for (int at = from; at < to; at += maxChunk) {
        run(Arrays.copyOfRange(prompt, at, Math.min(to, at + maxChunk)), null, false);
      }
      rows.append(paged, prefix, prefix + n);
      truncate(prefix);
    } catch (RuntimeException e) {
      rows.close();
      throw e;
    }
    List<PageKey> taken = new ArrayList<>();
    for (int i = 0; i < keys.size(); i++) {
      if (prefixCache.offer(keys.get(i), rows.share(i))) {
        taken.add(keys.get(i));
      }
    }
    return new DocumentKv(prefixCache, taken, rows, document, false);
  }

  /**
   * Appends tokens {@code [from, to)} of a document with the keys and values of its own encoding
   * (document reuse): an approximation, since they did not attend to what precedes them here.
   */
  public void place(DocumentKv document, int from, int to) {
    settle();
    int start = length();
    if (start + to - from > capacity()) {
      throw new IllegalArgumentException("sequence of " + (start + to - from) + " tokens exceeds the capacity of "
          + capacity());
    }
    ((PagedKvCache) cache).append(document.rows, from, to);
    record(start, Arrays.copyOfRange(document.tokens, from, to));
    inexactFrom = Math.min(inexactFrom, start);
  }

  public int capacity() {
    return cache.capacity();
  }

  public int maxChunk() {
    return maxChunk;
  }

  public KvCache cache() {
    return cache;
  }

  /** The tokens held, in order. */
  public int[] tokens() {
    settle();
    return Arrays.copyOf(tokens, length());
  }

  /**
   * Appends tokens (in chunks of at most {@link #maxChunk()}) and returns the logits of the last one.
   */
  public float[] append(int[] newTokens) {
    return appendToSample(newTokens).all();
  }

  /**
   * Appends tokens (in chunks of at most {@link #maxChunk()}) and leaves the logits of the last one
   * where the backend computed them, for a sampler to take what it needs: on a GPU the few largest
   * rather than a vocabulary-sized row. They can be read until the sequence appends again or closes.
   * One token appended alone is a decode step: under {@link AttentionConfig.Selection#QUERY} it
   * chooses its blocks with its own query.
   */
  public Logits appendToSample(int[] newTokens) {
    forward(newTokens, null, true, newTokens.length == 1);
    return new LastLogits(logitsVersion);
  }

  /**
   * Appends tokens as a prefill computes them, in chunks of at most {@link #maxChunk()}, without
   * logits: a prompt's part before its last chunk.
   */
  public void prefill(int[] newTokens) {
    forward(newTokens, null, false, false);
  }

  /** Appends tokens and returns the logits of every one of them (for tests and scoring). */
  public float[][] appendAllLogits(int[] newTokens) {
    float[][] out = new float[newTokens.length][model.config().vocabSize()];
    forward(newTokens, out, false, false);
    return out;
  }

  /**
   * Runs the tokens: logits of every one into {@code all} if given, and with {@code lastLogits} the
   * last one's left in the workspace; {@code decode}: they are one token appended to sample from.
   */
  private void forward(int[] newTokens, float[][] all, boolean lastLogits, boolean decode) {
    if (newTokens.length == 0) {
      throw new IllegalArgumentException("no tokens to append");
    }
    settle();
    checkRoom(newTokens.length);
    logitsVersion++; // whatever logits the workspace held are overwritten from here on
    if (decode && lastLogits) {
      decodeStep(newTokens, null);
      record(length() - 1, newTokens);
      offerFullPages();
      return;
    }
    for (int from = 0; from < newTokens.length; from += maxChunk) {
      int to = Math.min(newTokens.length, from + maxChunk);
      int[] chunk = Arrays.copyOfRange(newTokens, from, to);
      int start = length();
      run(chunk, null, decode);
      record(start, chunk);
      offerFullPages();
      if (all != null) {
        model.logits(workspace, 0, chunk.length, Arrays.copyOfRange(all, from, to));
      } else if (lastLogits && to == newTokens.length) {
        model.logits(workspace, chunk.length - 1, chunk.length, null);
      }
    }
  }

  /**
   * {@link #appendToSample(int[])} of one token that the backend chose ({@link Logits#greedy}) and the host
   * may not have read: the decode step is queued at once, its embedding reading the token where the
   * backend left it, and the sequence reads the id when it next needs its tokens.
   */
  public Logits appendToSample(Token token) {
    settle();
    checkRoom(1);
    logitsVersion++;
    decodeStep(null, token);
    record(length() - 1, new int[] {0}); // the id, once read
    pending = token;
    pendingAt = length() - 1;
    return new LastLogits(logitsVersion);
  }

  /** Whether a greedy generation can queue a decode step before the host reads the token (a GPU). */
  public boolean choosesAhead() {
    return model.backend().choosesAhead();
  }

  /**
   * One token (its id, or the backend's {@code chosen} token) through the model and its logits: a backend
   * may replay a record of the step.
   */
  private void decodeStep(int[] token, Token chosen) {
    model.backend().decodeStep(cache, attention, () -> {
      run(token, chosen, true);
      model.logits(workspace, 0, 1, null);
    });
  }

  private void checkRoom(int newTokens) {
    if (length() + newTokens > capacity()) {
      throw new IllegalArgumentException("sequence of " + (length() + newTokens) + " tokens exceeds the capacity of "
          + capacity());
    }
  }

  /** Reads the id of a token appended before the host had it, and offers the page it may have completed. */
  private void settle() {
    if (pending != null) {
      Token t = pending;
      pending = null;
      tokens[pendingAt] = t.id();
      offerFullPages();
    }
  }

  /** The last token's logits in row 0 of the workspace's logits, while no later append overwrote them. */
  private final class LastLogits implements Logits {
    private final long version;

    LastLogits(long version) {
      this.version = version;
    }

    @Override
    public int vocabSize() {
      return model.config().vocabSize();
    }

    @Override
    public float[] all() {
      check();
      float[] row = new float[vocabSize()];
      model.backend().read(workspace.logits, 0, row);
      return row;
    }

    @Override
    public TopLogits top(int k, float inverseTemperature) {
      check();
      return model.backend().top(workspace.logits, 0, k, inverseTemperature);
    }

    @Override
    public Token greedy() {
      check();
      return model.backend().greedy(workspace.logits, 0);
    }

    private void check() {
      if (version != logitsVersion) {
        throw new IllegalStateException("these logits are gone: the sequence appended tokens since, or closed");
      }
    }
  }

  /**
   * Runs a chunk through the model. Only a {@code decode} step (one token appended to sample from)
   * chooses blocks with its own query under {@link AttentionConfig.Selection#QUERY}, and is noted as
   * no longer what a prefill computes; any other chunk of one token chooses as a longer chunk does,
   * with key bounds.
   */
  private void run(int[] chunk, Token chosen, boolean decode) {
    int start = length();
    AttentionConfig config = attention;
    if ((chosen != null || chunk.length == 1) && attention.tokenChooses(start)) {
      if (decode) {
        inexactFrom = Math.min(inexactFrom, start);
      } else {
        config = attention.withSelection(AttentionConfig.Selection.BOUND);
      }
    }
    if (chosen != null) {
      model.forwardChosen(this, chosen, config);
    } else {
      model.forwardChunk(this, chunk, config);
    }
  }

  private void record(int start, int[] chunk) {
    if (start + chunk.length > tokens.length) {
      tokens = Arrays.copyOf(tokens, Math.max(tokens.length * 2, start + chunk.length));
    }
    System.arraycopy(chunk, 0, tokens, start, chunk.length);
  }

  /** Forgets the tokens from {@code length} on, so that a different continuation can be run. */
  public void truncate(int length) {
    settle();
    int kept = cache.truncate(length);
    if (prefixCache != null) {
      unkeyFrom(kept / prefixCache.pageTokens()); // after the cache let go of (or copied) those pages
    }
    if (length == 0) {
      mixedAttention = false;
    }
    if (length <= inexactFrom) {
      inexactFrom = Integer.MAX_VALUE;
    }
    if (kept < length) {
      // The cache cut at a block-sum boundary: recompute the rest from the tokens.
      int[] rest = Arrays.copyOfRange(tokens, kept, length);
      for (int from = 0; from < rest.length; from += maxChunk) {
        run(Arrays.copyOfRange(rest, from, Math.min(rest.length, from + maxChunk)), null, false);
      }
    }
  }

  @Override
  public void close() {
    try {
      settle(); // the page the last token completed goes to the prefix cache
    } finally {
      pending = null;
      logitsVersion++;
      if (prefixCache != null) {
        unkeyFrom(0);
      }
      cache.close();
      workspace.free(model.backend());
    }
  }
}
