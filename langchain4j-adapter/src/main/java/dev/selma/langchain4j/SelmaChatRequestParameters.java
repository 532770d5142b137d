package dev.selma.langchain4j;

import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import dev.selma.engine.attention.AttentionConfig;
import java.util.Objects;

/**
 * LangChain4j's common request parameters plus what Selma honours beyond them: the sampling settings
 * {@code seed}, {@code minP} and {@code repetitionPenalty}, and the {@code attention} scheme (dense or
 * select-and-merge, with its position scheme: original, re-indexed, Self-Extend, CRD NTK). Use it as a model's default request
 * parameters or as the parameters of one {@code ChatRequest}; the common parameters of a plain
 * {@link DefaultChatRequestParameters} are honoured too.
 */
public class SelmaChatRequestParameters extends DefaultChatRequestParameters {

  private final Long seed;
  private final Double minP;
  private final Double repetitionPenalty;
  private final AttentionConfig attention;

  protected SelmaChatRequestParameters(Builder builder) {
    super(builder);
    this.seed = builder.seed;
    this.minP = builder.minP;
    this.repetitionPenalty = builder.repetitionPenalty;
    this.attention = builder.attention;
  }

  /** Seed of the random draw when sampling; unset means a fresh random seed per request. */
  public Long seed() {
    return seed;
  }

  /** Drop tokens less likely than {@code minP} times the most likely one; unset or 0 keeps all. */
  public Double minP() {
    return minP;
  }

  /** Hugging Face's repetition penalty over prompt and output; unset or 1 is off. */
  public Double repetitionPenalty() {
    return repetitionPenalty;
  }

  /** How the prompt and answer attend; unset means the engine's default (dense unless loaded otherwise). */
  public AttentionConfig attention() {
    return attention;
  }

  @Override
  public SelmaChatRequestParameters overrideWith(ChatRequestParameters that) {
    return builder().overrideWith(this).overrideWith(that).build();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SelmaChatRequestParameters that && super.equals(o) && Objects.equals(seed, that.seed)
        && Objects.equals(minP, that.minP) && Objects.equals(repetitionPenalty, that.repetitionPenalty)
        && Objects.equals(attention, that.attention);
  }

  @Override
  public int hashCode() {
    return Objects.hash(super.hashCode(), seed, minP, repetitionPenalty, attention);
  }

  @Override
  public String toString() {
    String common = super.toString();
    return "SelmaChatRequestParameters{" + common.substring(common.indexOf('{') + 1, common.lastIndexOf('}'))
        + ", seed=" + seed + ", minP=" + minP + ", repetitionPenalty=" + repetitionPenalty + ", attention=" + attention + "}";
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Builds {@link SelmaChatRequestParameters}. */
  public static class Builder extends DefaultChatRequestParameters.Builder<Builder> {
    private Long seed;
    private Double minP;
    private Double repetitionPenalty;
    private AttentionConfig attention;

    /** Copies every non-null value of {@code parameters}, Selma's own ones included when present. */
    @Override
    public Builder overrideWith(ChatRequestParameters parameters) {
      super.overrideWith(parameters);
      if (parameters instanceof SelmaChatRequestParameters s) {
        seed = s.seed != null ? s.seed : seed;
        minP = s.minP != null ? s.minP : minP;
        repetitionPenalty = s.repetitionPenalty != null ? s.repetitionPenalty : repetitionPenalty;
        attention = s.attention != null ? s.attention : attention;
      }
      return this;
    }

    public Builder seed(Long seed) {
      this.seed = seed;
      return this;
    }

    public Builder minP(Double minP) {
      this.minP = minP;
      return this;
    }

    public Builder repetitionPenalty(Double repetitionPenalty) {
      this.repetitionPenalty = repetitionPenalty;
      return this;
    }

    public Builder attention(AttentionConfig attention) {
      this.attention = attention;
      return this;
    }

    @Override
    public SelmaChatRequestParameters build() {
      return new SelmaChatRequestParameters(this);
    }
  }
}
