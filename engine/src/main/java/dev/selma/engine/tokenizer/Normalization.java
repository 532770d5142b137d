package dev.selma.engine.tokenizer;

import java.text.Normalizer;
import java.util.List;

/**
 * The normalizers the supported tokenizer.json files use, applied in order to each stretch of text
 * between added tokens: Unicode NFC (Qwen), and SentencePiece's space convention (Llama 2, Mistral),
 * expressed as {@code Prepend("▁")} (only to non-empty text: the "dummy prefix" that makes a word at
 * the start look like a word after a space) and {@code Replace(" ", "▁")}.
 */
record Normalization(List<Step> steps) {

  sealed interface Step permits Nfc, Prepend, Replace {}

  record Nfc() implements Step {}

  record Prepend(String prefix) implements Step {}

  record Replace(String from, String to) implements Step {}

  static final Normalization NONE = new Normalization(List.of());

  boolean isEmpty() {
    return steps.isEmpty();
  }

  String apply(String text) {
    for (Step step : steps) {
      text = switch (step) {
        case Nfc n -> isNfc(text) ? text : Normalizer.normalize(text, Normalizer.Form.NFC);
        case Prepend p -> text.isEmpty() ? text : p.prefix() + text;
        case Replace r -> text.replace(r.from(), r.to());
      };
    }
    return text;
  }

  /**
   * Text below U+0300 is always NFC (no combining marks, nothing that composes); checking that first
   * is much cheaper than the full check on mostly-Latin text.
   */
  private static boolean isNfc(String text) {
    for (int i = 0; i < text.length(); i++) {
      if (text.charAt(i) >= '\u0300') {
        return Normalizer.isNormalized(text, Normalizer.Form.NFC);
      }
    }
    return true;
  }

  /** Whether this is SentencePiece's convention, which GGUF expresses as {@code add_space_prefix}. */
  boolean prependsSpace() {
    for (Step step : steps) {
      if (step instanceof Prepend(String p) && p.equals("\u2581")) {
        return true;
      }
    }
    return false;
  }
}
