package dev.selma.engine.generate;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.backend.Logits;
import dev.selma.engine.backend.Token;
import dev.selma.engine.llama.DocumentKv;
import dev.selma.engine.llama.Sequence;
import java.util.Arrays;

/**
 * Runs a {@link GenerationRequest} on a {@link Sequence}: reuses whatever prefix of the prompt the
 * sequence already holds or its prefix cache has, prefills the rest in chunks (reporting progress, cancellable between
 * chunks) and places the request's documents if it asked for document reuse, then samples token by token until a
 * stop token, a stop sequence, the token limit, a full context or cancellation.
 */
public final class Generator {
  private Generator() {}

  /**
   * Generates on {@code seq}. {@code text} decodes tokens as they come; with null, the result has no
   * text and stop sequences cannot be used. Greedy generation on a backend that {@linkplain
   * dev.selma.engine.backend.Backend#choosesAhead chooses ahead} queues each decode step before reading its
   * token: when a stop token, a stop sequence or cancellation ends it, {@code seq} also holds the last
   * token chosen, whose step was already running.
   */
  public static GenerationResult generate(Sequence seq, GenerationRequest request, TokenTextStream text) {
    int[] prompt = request.prompt();
    if (prompt.length >= seq.capacity()) {
      throw new IllegalArgumentException("the prompt has " + prompt.length
          + " tokens but the context holds at most " + seq.capacity() + " (prompt and answer together)");
    }
    if (text == null && !request.stopSequences().isEmpty()) {
      throw new IllegalArgumentException("stop sequences need a tokenizer to decode the output");
    }
    GenerationListener listener = request.listener();
    CancellationToken cancel = request.cancellation();

    // Keys and values of deeper layers depend on how earlier tokens attended, so a held prefix is
    // reused only under the same attention configuration. Setting it also starts fresh statistics.
    AttentionConfig attention = request.attention() != null ? request.attention() : seq.attention();
    boolean sameAttention = attention.equals(seq.attention());
    seq.attention(attention);
    // Documents are placed only where the prefix cache can keep their keys and values, and only those
    // longer than their boundary; otherwise the whole prompt is computed exactly.
    DocumentReuse documents = request.documents();
    boolean placing = documents != null && request.usePrefixCache() && seq.hasPrefixCache()
        && documents.placesAny(prompt.length);
    // Keep the longest common prefix the sequence holds exactly, then continue it with pages of the
    // prefix cache (if the sequence has one); at least one prompt token must run so that there are
    // logits to sample from. With documents to place, both stop at the documents' prefix, after which
    // documents are encoded. Fetching cached pages is part of the time to the first token.
    long t0 = System.nanoTime();
    int exactEnd = placing ? documents.prefix() : prompt.length;
    int[] held = sameAttention ? Arrays.copyOf(seq.tokens(), seq.exactLength()) : new int[0];
    int common = 0;
    while (common < held.length && common < exactEnd && common < prompt.length - 1
        && held[common] == prompt[common]) {
      common++;
    }
    seq.truncate(common);
    if (request.usePrefixCache()) {
      common = seq.reuseCachedPrefix(placing ? Arrays.copyOf(prompt, exactEnd) : prompt);
    }
    if (common == prompt.length) {
      seq.truncate(--common);
    }
    Prefill prefill = new Prefill(seq, prompt, common, listener, cancel, t0);
    if (!(placing ? prefill.withDocuments(documents) : prefill.computeTo(prompt.length))) {
      return finish(seq, new int[0], "", FinishReason.CANCELLED, prompt.length, prefill.reused,
          System.nanoTime() - t0, 0);
    }
    long prefillNanos = System.nanoTime() - t0;
    Logits logits = prefill.logits;

    Sampler sampler = new Sampler(request.sampling(), logits.vocabSize(), prompt);
    StopSequences stops = new StopSequences(request.stopSequences());
    StringBuilder out = new StringBuilder();
    int[] generated = new int[Math.min(request.maxNewTokens(), 1024)];
    int count = 0;
    FinishReason reason = FinishReason.LENGTH;
    long t1 = System.nanoTime();
    // Greedy on a backend that chooses ahead: the step for a chosen token is queued before the host
    // reads the token, so that the host's work on it overlaps the step. When the token ends the
    // generation, that step was for nothing, and the sequence holds the token.
    boolean ahead = sampler.greedy() && seq.choosesAhead();
    Token chosen = ahead ? logits.greedy() : null;
    while (true) {
      if (cancel.isCancelled()) {
        reason = FinishReason.CANCELLED;
        break;
      }
      int token;
      if (ahead) {
        Token next = null;
        if (count + 1 < request.maxNewTokens() && seq.length() + 1 < seq.capacity()) {
          logits = seq.appendToSample(chosen);
          next = logits.greedy();
        }
        token = chosen.id();
        chosen = next;
      } else {
        token = sampler.sample(logits);
      }
      if (contains(request.stopTokens(), token)) {
        reason = FinishReason.STOP;
        break;
      }
      sampler.accept(token);
      if (count == generated.length) {
        generated = Arrays.copyOf(generated, Math.min(request.maxNewTokens(), count * 2));
      }
      generated[count++] = token;
      String piece = "";
      if (text != null) {
        piece = stops.add(text.next(token));
        out.append(piece);
      }
      listener.onToken(token, piece);
      if (stops.stopped()) {
        reason = FinishReason.STOP;
        break;
      }
      if (ahead ? chosen == null : count == request.maxNewTokens() || seq.length() + 1 >= seq.capacity()) {
        break;
      }
      if (!ahead) {
        logits = seq.appendToSample(new int[] {token});
      }
    }
    if (!stops.stopped()) {
      out.append(stops.flush());
    }
    return finish(seq, Arrays.copyOf(generated, count), out.toString(), reason, prompt.length, prefill.reused,
        prefillNanos, System.nanoTime() - t1);
  }

  /**
   * A prompt's prefill from the tokens reused on: tokens computed in chunks (cancellable between
   * chunks, reporting progress) and documents placed.
   */
  private static final class Prefill {
    private final Sequence seq;
    private final int[] prompt;
    private final GenerationListener listener;
    private final CancellationToken cancel;
    private final int start;
    private final long t0;
    /** The next prompt token. */
    private int at;
    /** Prompt tokens whose keys and values were reused rather than computed for this request. */
    int reused;
    /** The logits of the last token computed. */
    Logits logits;

    Prefill(Sequence seq, int[] prompt, int start, GenerationListener listener, CancellationToken cancel, long t0) {
      this.seq = seq;
      this.prompt = prompt;
      this.start = start;
      this.at = start;
      this.reused = start;
      this.listener = listener;
      this.cancel = cancel;
      this.t0 = t0;
    }

    /** Computes the prompt up to {@code to}; false if cancelled. */
    boolean computeTo(int to) {
      while (at < to) {
        if (cancel.isCancelled()) {
          return false;
        }
        int end = Math.min(to, at + seq.maxChunk());
        if (end == prompt.length && end - at > 1 && seq.attention().tokenChooses(end - 1)) {
          end--; // the prompt's last token runs alone, so that it chooses blocks with its own query
        }
        int[] chunk = Arrays.copyOfRange(prompt, at, end);
        if (end == prompt.length) {
          logits = seq.appendToSample(chunk);
        } else {
          seq.prefill(chunk);
        }
        at = end;
        progress();
      }
      return true;
    }

    /**
     * Computes the prompt with {@code documents} placed: the prefix, then every document's own keys
     * and values (looked up or encoded while the sequence holds just the prefix), then in prompt
     * order what lies between the documents and each document's boundary tokens, computed, and the
     * rest of each document, placed; last, what follows the documents. False if cancelled.
     */
    boolean withDocuments(DocumentReuse documents) {
      if (!computeTo(documents.prefix())) {
        return false;
      }
      int n = documents.documents().size();
      DocumentKv[] kv = new DocumentKv[n];
      try {
        for (int i = 0; i < n; i++) {
          if (documents.placed(i, prompt.length).length() == 0) {
            continue;
          }
          if (cancel.isCancelled()) {
            return false;
          }
          DocumentReuse.Range r = documents.documents().get(i);
          kv[i] = seq.documentKv(prompt, r.from(), r.to());
        }
        for (int i = 0; i < n; i++) {
          if (kv[i] == null) {
            continue;
          }
          DocumentReuse.Range r = documents.documents().get(i), placed = documents.placed(i, prompt.length);
          if (!computeTo(placed.from())) {
            return false;
          }
          seq.place(kv[i], placed.from() - r.from(), placed.to() - r.from());
          if (kv[i].cached()) {
            reused += placed.to() - placed.from();
          }
          kv[i].close();
          at = placed.to();
          progress();
        }
        return computeTo(prompt.length);
      } finally {
        for (DocumentKv d : kv) {
          if (d != null) {
            d.close();
          }
        }
      }
    }

    private void progress() {
      long elapsed = System.nanoTime() - t0;
      listener.onPrefillProgress(at - start, prompt.length - start, (at - start) * 1e9 / Math.max(1, elapsed));
    }
  }

  private static GenerationResult finish(Sequence seq, int[] tokens, String text, FinishReason reason,
      int promptTokens, int cached, long prefill, long decode) {
    return new GenerationResult(tokens, text, reason,
        new Usage(promptTokens, cached, tokens.length, prefill, decode), seq.attentionStats());
  }

  private static boolean contains(int[] ids, int id) {
    for (int i : ids) {
      if (i == id) {
        return true;
      }
    }
    return false;
  }
}
