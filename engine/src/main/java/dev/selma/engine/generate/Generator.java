package dev.selma.engine.generate;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.llama.Sequence;
import java.util.Arrays;

/**
 * Runs a {@link GenerationRequest} on a {@link Sequence}: reuses whatever prefix of the prompt the
 * sequence already holds or its prefix cache has, prefills the rest in chunks (reporting progress, cancellable between
 * chunks), then samples token by token until a stop token, a stop sequence, the token limit, a full
 * context or cancellation.
 */
public final class Generator {
  private Generator() {}

  /**
   * Generates on {@code seq}. {@code text} decodes tokens as they come; with null, the result has no
   * text and stop sequences cannot be used.
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
    // Keep the longest common prefix the sequence already holds, then continue it with pages of the
    // prefix cache (if the sequence has one); at least one prompt token must run so that there are
    // logits to sample from. Fetching cached pages is part of the time to the first token.
    long t0 = System.nanoTime();
    int[] held = sameAttention ? seq.tokens() : new int[0];
    int common = 0;
    while (common < held.length && common < prompt.length - 1 && held[common] == prompt[common]) {
      common++;
    }
    seq.truncate(common);
    if (request.usePrefixCache()) {
      common = seq.reuseCachedPrefix(prompt);
    }
    if (common == prompt.length) {
      seq.truncate(--common);
    }
    float[] logits = null;
    for (int from = common; from < prompt.length; from += seq.maxChunk()) {
      if (cancel.isCancelled()) {
        return finish(seq, new int[0], "", FinishReason.CANCELLED, prompt.length, common, System.nanoTime() - t0, 0);
      }
      int to = Math.min(prompt.length, from + seq.maxChunk());
      logits = seq.append(Arrays.copyOfRange(prompt, from, to));
      long elapsed = System.nanoTime() - t0;
      listener.onPrefillProgress(to - common, prompt.length - common, (to - common) * 1e9 / Math.max(1, elapsed));
    }
    long prefill = System.nanoTime() - t0;

    Sampler sampler = new Sampler(request.sampling(), logits.length, prompt);
    StopSequences stops = new StopSequences(request.stopSequences());
    StringBuilder out = new StringBuilder();
    int[] generated = new int[Math.min(request.maxNewTokens(), 1024)];
    int count = 0;
    FinishReason reason = FinishReason.LENGTH;
    long t1 = System.nanoTime();
    while (true) {
      if (cancel.isCancelled()) {
        reason = FinishReason.CANCELLED;
        break;
      }
      int token = sampler.sample(logits);
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
      if (count == request.maxNewTokens() || seq.length() + 1 >= seq.capacity()) {
        break;
      }
      logits = seq.append(new int[] {token});
    }
    if (!stops.stopped()) {
      out.append(stops.flush());
    }
    return finish(seq, Arrays.copyOf(generated, count), out.toString(), reason, prompt.length, common, prefill,
        System.nanoTime() - t1);
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
