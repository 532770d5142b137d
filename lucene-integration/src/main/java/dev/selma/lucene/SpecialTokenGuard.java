package dev.selma.lucene;

import dev.selma.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Keeps document text and questions from spelling the model's special tokens. The tokenizer turns a
 * spelled special token (such as {@code </s>} or {@code <|im_end|>}) into its control id, so a document
 * could otherwise end the user turn or open a fake system turn. Each occurrence gets a zero-width space
 * after its first character: it reads the same, but is tokenized as plain text.
 */
public final class SpecialTokenGuard {
  private static final char BREAK = '\u200B';
  private final List<String> specials;
  private final boolean[] firstChars = new boolean[65536];

  public SpecialTokenGuard(Tokenizer tokenizer) {
    List<String> s = new ArrayList<>();
    for (int id = 0; id < tokenizer.vocabSize(); id++) {
      if (tokenizer.isSpecial(id)) {
        String t = tokenizer.token(id);
        if (t != null && t.length() > 1) {
          s.add(t);
          firstChars[t.charAt(0)] = true;
        }
      }
    }
    s.sort(Comparator.comparingInt(String::length).reversed());
    this.specials = List.copyOf(s);
  }

  /** The spelled special tokens this guard breaks, longest first. */
  public List<String> specials() {
    return specials;
  }

  /** {@code text} with every spelled special token broken; the same string when there is none. */
  public String neutralize(String text) {
    StringBuilder out = null;
    int copied = 0;
    for (int i = 0; i < text.length(); i++) {
      if (!firstChars[text.charAt(i)]) {
        continue;
      }
      for (String sp : specials) {
        if (text.startsWith(sp, i)) {
          if (out == null) {
            out = new StringBuilder(text.length() + 16);
          }
          out.append(text, copied, i + 1).append(BREAK);
          copied = i + 1;
          break;
        }
      }
    }
    return out == null ? text : out.append(text, copied, text.length()).toString();
  }
}
