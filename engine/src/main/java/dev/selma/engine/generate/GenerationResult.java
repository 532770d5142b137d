package dev.selma.engine.generate;

/**
 * What a generation produced.
 *
 * @param tokens the generated token ids (a stop sequence's tokens included, an EOS token excluded)
 * @param text the generated text, without the stop sequence that ended it
 * @param finishReason why it ended
 * @param usage token counts and timings
 */
public record GenerationResult(int[] tokens, String text, FinishReason finishReason, Usage usage) {}
