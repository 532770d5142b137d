package dev.selma.engine.generate;

import dev.selma.engine.attention.AttentionConfig;
import java.util.List;
import java.util.Objects;

/**
 * One generation: a prompt of token ids and how to continue it.
 *
 * @param prompt the prompt's token ids (at least one)
 * @param maxNewTokens the most tokens to generate (at least one)
 * @param sampling how to choose tokens
 * @param stopTokens ids that end generation (typically the model's end-of-sequence ids); not part
 *     of the output
 * @param stopSequences texts that end generation when generated; not part of the output text
 * @param listener hears progress and tokens
 * @param cancellation lets another thread stop the generation
 * @param attention how the prompt and answer attend (dense or select-and-merge, and the position
 *     scheme); null keeps the sequence's current configuration
 * @param usePrefixCache whether the prompt may start from pages of the engine's prefix cache
 * @param documents where the prompt's documents lie, to reuse their keys and values at any offset
 *     (an approximation, see {@link DocumentReuse}); null (the default): off, the prompt is computed
 *     exactly
 */
public record GenerationRequest(int[] prompt, int maxNewTokens, SamplingParams sampling, int[] stopTokens,
    List<String> stopSequences, GenerationListener listener, CancellationToken cancellation,
    AttentionConfig attention, boolean usePrefixCache, DocumentReuse documents) {

  public GenerationRequest {
    Objects.requireNonNull(prompt, "prompt");
    if (prompt.length == 0) {
      throw new IllegalArgumentException("the prompt is empty");
    }
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("max new tokens must be >= 1, got " + maxNewTokens);
    }
    prompt = prompt.clone();
    sampling = sampling == null ? SamplingParams.GREEDY : sampling;
    stopTokens = stopTokens == null ? new int[0] : stopTokens.clone();
    stopSequences = stopSequences == null ? List.of() : List.copyOf(stopSequences);
    listener = listener == null ? new GenerationListener() {} : listener;
    cancellation = cancellation == null ? new CancellationToken() : cancellation;
    if (documents != null) {
      documents.requireWithin(prompt.length);
    }
  }

  public static Builder builder(int[] prompt) {
    return new Builder(prompt);
  }

  /** Builds a request; unset fields take their defaults (greedy, 256 new tokens, no stops). */
  public static final class Builder {
    private final int[] prompt;
    private int maxNewTokens = 256;
    private SamplingParams sampling = SamplingParams.GREEDY;
    private int[] stopTokens;
    private List<String> stopSequences;
    private GenerationListener listener;
    private CancellationToken cancellation;
    private AttentionConfig attention;
    private boolean usePrefixCache = true;
    private DocumentReuse documents;

    private Builder(int[] prompt) {
      this.prompt = prompt;
    }

    public Builder maxNewTokens(int n) {
      this.maxNewTokens = n;
      return this;
    }

    public Builder sampling(SamplingParams s) {
      this.sampling = s;
      return this;
    }

    public Builder stopTokens(int... ids) {
      this.stopTokens = ids;
      return this;
    }

    public Builder stopSequences(List<String> s) {
      this.stopSequences = s;
      return this;
    }

    public Builder listener(GenerationListener l) {
      this.listener = l;
      return this;
    }

    public Builder cancellation(CancellationToken c) {
      this.cancellation = c;
      return this;
    }

    public Builder attention(AttentionConfig a) {
      this.attention = a;
      return this;
    }

    public Builder usePrefixCache(boolean use) {
      this.usePrefixCache = use;
      return this;
    }

    /** Opts in to document reuse for this prompt's {@code documents} (null: off). */
    public Builder documents(DocumentReuse documents) {
      this.documents = documents;
      return this;
    }

    public GenerationRequest build() {
      return new GenerationRequest(prompt, maxNewTokens, sampling, stopTokens, stopSequences, listener,
          cancellation, attention, usePrefixCache, documents);
    }
  }
}
