package dev.selma.engine.generate;

import dev.selma.engine.attention.AttentionStats;

/**
 * What a generation produced.
 *
 * @param tokens the generated token ids (a stop sequence's tokens included, an EOS token excluded)
 * @param text the generated text, without the stop sequence that ended it
 * @param finishReason why it ended
 * @param usage token counts and timings
 * @param attentionStats which key blocks select-and-merge chose while this request ran (empty for
 *     dense attention); maps token ranges of the prompt to how often the answer read them
 */
public record GenerationResult(int[] tokens, String text, FinishReason finishReason, Usage usage,
    AttentionStats attentionStats) {}
