package dev.selma.engine.attention;

import dev.selma.engine.model.GgufMetadata;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.ModelFormatException;
import java.util.Locale;

/**
 * A model's own recommendation of how to attend, read from its GGUF metadata ({@code selma.*} keys,
 * written by Selma's training tools): plain dense attention up to the length it was trained on, and a
 * long-context configuration beyond. Models without these keys attend densely at every length.
 *
 * <p>Keys: {@code selma.train.context_length} (the trained window; else the model's context length),
 * {@code selma.recommended.position_scheme} = {@code selfextend} (with {@code
 * selma.recommended.self_extend.group_size} and {@code .window}), {@code reindexed} (select-and-merge
 * with re-indexed positions, sized to the trained window, its blocks ranked by {@code
 * selma.recommended.selection}: {@code mean}, the paper's block means, by default, or {@code bound})
 * or {@code original}.
 *
 * @param trainedWindow prompts up to this many tokens use dense attention at original positions
 * @param longContext the configuration for longer prompts
 */
public record AttentionProfile(int trainedWindow, AttentionConfig longContext) {

  /** Dense attention at every length. */
  public static AttentionProfile dense(ModelConfig config) {
    return new AttentionProfile(config.maxPositionEmbeddings(), AttentionConfig.dense());
  }

  /** The configuration for a sequence of {@code tokens} tokens. */
  public AttentionConfig forLength(int tokens) {
    return tokens <= trainedWindow ? AttentionConfig.dense() : longContext;
  }

  /** The profile a GGUF file recommends, validated against the model. */
  public static AttentionProfile fromGguf(GgufMetadata metadata, ModelConfig config) throws ModelFormatException {
    int trained = metadata.getInt("selma.train.context_length", config.maxPositionEmbeddings());
    String scheme = metadata.getString("selma.recommended.position_scheme", "original").toLowerCase(Locale.ROOT);
    AttentionConfig longContext = switch (scheme) {
      case "original" -> AttentionConfig.dense();
      case "selfextend", "self-extend" -> AttentionConfig.dense().withPositions(new AttentionConfig.SelfExtend(
          metadata.getInt("selma.recommended.self_extend.group_size"),
          metadata.getInt("selma.recommended.self_extend.window")));
      case "reindexed" -> AttentionConfig.selectAndMergeWithin(trained).withPositions(new AttentionConfig.Reindexed())
          .withSelection(selection(metadata));
      default -> throw new ModelFormatException(metadata.file(), "selma.recommended.position_scheme",
          "unknown scheme '" + scheme + "'; Selma knows original, selfextend and reindexed");
    };
    try {
      longContext.validateFor(config);
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(metadata.file(), "selma.recommended.*", e.getMessage());
    }
    return new AttentionProfile(trained, longContext);
  }

  private static AttentionConfig.Selection selection(GgufMetadata metadata) throws ModelFormatException {
    String s = metadata.getString("selma.recommended.selection", "mean");
    try {
      return AttentionConfig.Selection.named(s);
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(metadata.file(), "selma.recommended.selection", e.getMessage());
    }
  }
}
