package dev.selma.langchain4j;

import dev.langchain4j.model.chat.response.ChatResponseMetadata;
import java.util.Objects;

/**
 * Response metadata with Selma's own figures beside LangChain4j's: how many prompt tokens came from
 * the prefix cache and how long the prompt and the answer took.
 */
public class SelmaChatResponseMetadata extends ChatResponseMetadata {
  private final int cachedPromptTokens;
  private final long prefillNanos;
  private final long decodeNanos;

  protected SelmaChatResponseMetadata(Builder builder) {
    super(builder);
    this.cachedPromptTokens = builder.cachedPromptTokens;
    this.prefillNanos = builder.prefillNanos;
    this.decodeNanos = builder.decodeNanos;
  }

  /** Prompt tokens whose keys and values were reused rather than computed. */
  public int cachedPromptTokens() {
    return cachedPromptTokens;
  }

  /** Time spent reading the prompt. */
  public long prefillNanos() {
    return prefillNanos;
  }

  /** Time spent generating the answer. */
  public long decodeNanos() {
    return decodeNanos;
  }

  @Override
  public Builder toBuilder() {
    return ((Builder) toBuilder(builder())).cachedPromptTokens(cachedPromptTokens).prefillNanos(prefillNanos)
        .decodeNanos(decodeNanos);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SelmaChatResponseMetadata that && super.equals(o)
        && cachedPromptTokens == that.cachedPromptTokens && prefillNanos == that.prefillNanos
        && decodeNanos == that.decodeNanos;
  }

  @Override
  public int hashCode() {
    return Objects.hash(super.hashCode(), cachedPromptTokens, prefillNanos, decodeNanos);
  }

  @Override
  public String toString() {
    return "SelmaChatResponseMetadata{id='" + id() + "', modelName='" + modelName() + "', tokenUsage=" + tokenUsage()
        + ", finishReason=" + finishReason() + ", cachedPromptTokens=" + cachedPromptTokens + ", prefillNanos="
        + prefillNanos + ", decodeNanos=" + decodeNanos + "}";
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Builds {@link SelmaChatResponseMetadata}. */
  public static class Builder extends ChatResponseMetadata.Builder<Builder> {
    private int cachedPromptTokens;
    private long prefillNanos;
    private long decodeNanos;

    public Builder cachedPromptTokens(int n) {
      this.cachedPromptTokens = n;
      return this;
    }

    public Builder prefillNanos(long nanos) {
      this.prefillNanos = nanos;
      return this;
    }

    public Builder decodeNanos(long nanos) {
      this.decodeNanos = nanos;
      return this;
    }

    @Override
    public SelmaChatResponseMetadata build() {
      return new SelmaChatResponseMetadata(this);
    }
  }
}
