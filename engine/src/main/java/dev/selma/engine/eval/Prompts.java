package dev.selma.engine.eval;

import dev.selma.engine.Engine;
import dev.selma.engine.tokenizer.template.Message;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Builds evaluation prompts of a target length in tokens, with the needle at a given depth (0 = the
 * start of the filler, 1 = its end).
 */
final class Prompts {
  /** Landmark Attention's filler and wording, character for character. */
  static final String PASSKEY_FILLER =
      "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
  static final String PASSKEY_TASK = "There is an important info hidden inside a lot of irrelevant text. "
      + "Find it and memorize them. I will quiz you about the important information there.";
  static final String PASSKEY_QUESTION = "What is the pass key? The pass key is";
  /** The system message of Selma's document QA prompts (the demo model is trained on it). */
  static final String QA_SYSTEM = "Answer the question from the documents. Quote the sentence that answers it.";

  private static final String[] ATTRIBUTES = {"vault code", "gate code", "lock code", "safe code", "door code"};
  private static final String[] PLACES = {"Pemberley", "Netherfield", "Longbourn", "Rosings", "Hartfield",
      "Mansfield", "Kellynch", "Northanger", "Barton", "Donwell", "Highbury", "Uppercross"};
  private static final String[] THINGS = {"library", "cellar", "stables", "chapel", "gallery", "orangery",
      "boathouse", "tower"};

  /** A prompt and what a correct answer contains (every value of a comma-separated list). */
  record Built(int[] ids, String expected) {}

  private final Engine engine;
  private final String haystack;

  /** {@code haystack}: prose for the needle tasks (may be null when only the passkey runs). */
  Prompts(Engine engine, String haystack) {
    this.engine = engine;
    this.haystack = haystack;
  }

  Built build(Task task, int targetTokens, double depth, SplittableRandom random) {
    return task == Task.PASSKEY ? passkey(targetTokens, depth, random) : needles(task, targetTokens, depth, random);
  }

  private Built passkey(int targetTokens, double depth, SplittableRandom random) {
    String key = Integer.toString(random.nextInt(1, 50_001));
    String needle = "The pass key is " + key + ". Remember it. " + key + " is the pass key.";
    String filler = repeat(PASSKEY_FILLER, targetTokens * 6);
    int[] ids = fit(targetTokens, chars -> {
      int prefix = (int) (chars * depth);
      String text = String.join("\n", PASSKEY_TASK, filler.substring(0, prefix), needle,
          filler.substring(0, chars - prefix), PASSKEY_QUESTION);
      return engine.tokenizer().encode(text, true);
    }, filler.length());
    return new Built(ids, key);
  }

  private Built needles(Task task, int targetTokens, double depth, SplittableRandom random) {
    if (haystack == null) {
      throw new IllegalArgumentException("task " + task + " needs a haystack text (--haystack)");
    }
    String attribute = ATTRIBUTES[random.nextInt(ATTRIBUTES.length)];
    int count = task == Task.NIAH_SINGLE ? 1 : 4;
    boolean multiValue = task == Task.NIAH_MULTIVALUE;
    List<String> entities = new ArrayList<>();
    while (entities.size() < (multiValue ? 1 : count)) {
      String e = "the " + PLACES[random.nextInt(PLACES.length)] + " " + THINGS[random.nextInt(THINGS.length)];
      if (!entities.contains(e)) {
        entities.add(e);
      }
    }
    List<String> values = new ArrayList<>();
    List<Double> depths = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      values.add(Integer.toString(random.nextInt(10_000, 100_000)));
      depths.add(i == 0 ? depth : random.nextDouble());
    }
    int start = random.nextInt(Math.max(1, haystack.length() / 2));
    String prose = repeat(haystack.substring(start) + "\n\n" + haystack, targetTokens * 8);
    String question = multiValue ? "What are all the " + attribute + "s of " + entities.get(0) + "?"
        : "What is the " + attribute + " of " + entities.get(0) + "?";
    int[] ids = fit(targetTokens, chars -> {
      StringBuilder text = new StringBuilder(prose.substring(0, chars));
      // Insert from the deepest needle up so that earlier offsets stay valid.
      List<Integer> order = new ArrayList<>(List.of(0, 1, 2, 3).subList(0, count));
      order.sort((a, b) -> Double.compare(depths.get(b), depths.get(a)));
      for (int i : order) {
        int at = sentenceBoundary(text, (int) (chars * depths.get(i)));
        text.insert(at, multiValue ? " One of the " + attribute + "s of " + entities.get(0) + " is " + values.get(i) + "."
            : " The " + attribute + " of " + entities.get(i) + " is " + values.get(i) + ".");
      }
      String user = "Documents:\n\n[doc 1] id: haystack | title: Haystack\n" + text + "\n\nQuestion: " + question;
      return engine.encodeChat(List.of(Message.system(QA_SYSTEM), Message.user(user)));
    }, prose.length());
    return new Built(ids, multiValue ? String.join(",", values) : values.get(0));
  }

  /** The end of the sentence at or after {@code at} (or the end of the text). */
  private static int sentenceBoundary(CharSequence text, int at) {
    for (int i = Math.max(0, at); i < text.length(); i++) {
      if (text.charAt(i) == '.' && (i + 1 == text.length() || text.charAt(i + 1) == ' ')) {
        return i + 1;
      }
    }
    return text.length();
  }

  interface Render {
    int[] ids(int chars);
  }

  /**
   * The longest rendering of at most {@code targetTokens} tokens: a first guess from the observed
   * characters per token, then shrinking by the overshoot until it fits.
   */
  private static int[] fit(int targetTokens, Render render, int maxChars) {
    int chars = Math.min(maxChars, targetTokens * 3);
    int[] ids = render.ids(chars);
    for (int i = 0; i < 30; i++) {
      double perToken = (double) chars / Math.max(1, ids.length);
      int next = (int) Math.min(maxChars, Math.max(0, chars + (targetTokens - ids.length - 2) * perToken * 0.98));
      if (ids.length <= targetTokens && (next <= chars || ids.length >= targetTokens * 0.99)) {
        return ids;
      }
      chars = next;
      ids = render.ids(chars);
    }
    if (ids.length > targetTokens) {
      throw new IllegalStateException("could not fit a prompt into " + targetTokens + " tokens");
    }
    return ids;
  }

  private static String repeat(String s, int minLength) {
    StringBuilder b = new StringBuilder(minLength + s.length());
    while (b.length() < minLength) {
      b.append(s).append(' ');
    }
    return b.toString();
  }
}
