package dev.selma.engine.eval;

import dev.selma.engine.Engine;
import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.generate.GenerationListener;
import dev.selma.engine.generate.GenerationResult;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Long-context retrieval evaluation: for each task, length, depth, needle and attention scheme, a
 * prompt with a hidden needle, a greedy answer and a score. Needles are reproducible: the same seed
 * gives the same keys, values and filler at every scheme, so schemes are compared on equal terms.
 *
 * @param tasks the tasks
 * @param lengths prompt lengths in tokens
 * @param depths needle depths in [0, 1]
 * @param needles needles per length and depth
 * @param schemes attention schemes
 * @param seed seed of the needles
 * @param longest the longest prompt a scheme runs at (a scheme not in it runs at every length): dense
 *     attention's cost grows with the square of the length, so a grid can stop it where it stops fitting
 * @param blockSize select-and-merge's block size (its top k follows, so that the keys it gathers still
 *     span {@code span} tokens)
 * @param span how many tokens select-and-merge gathers per query block; 0 = the model's trained window
 */
public record Evaluation(List<Task> tasks, List<Integer> lengths, List<Double> depths, int needles,
    List<Scheme> schemes, long seed, Map<Scheme, Integer> longest, int blockSize, int span) {
  private static final Pattern NUMBER = Pattern.compile("\\d+");

  public Evaluation {
    if (tasks.isEmpty() || lengths.isEmpty() || depths.isEmpty() || schemes.isEmpty() || needles < 1) {
      throw new IllegalArgumentException("an evaluation needs tasks, lengths, depths, schemes and needles >= 1");
    }
    if (span < 0) {
      throw new IllegalArgumentException("span must be 0 (the trained window) or a number of tokens, got " + span);
    }
    for (double d : depths) {
      if (!(d >= 0 && d <= 1)) {
        throw new IllegalArgumentException("depths must lie in [0, 1], got " + d);
      }
    }
    tasks = List.copyOf(tasks);
    lengths = List.copyOf(lengths);
    depths = List.copyOf(depths);
    schemes = List.copyOf(schemes);
    longest = Map.copyOf(longest);
  }

  /** Every scheme at every length, blocks of {@link AttentionConfig#DEFAULT_BLOCK_SIZE}. */
  public Evaluation(List<Task> tasks, List<Integer> lengths, List<Double> depths, int needles, List<Scheme> schemes,
      long seed) {
    this(tasks, lengths, depths, needles, schemes, seed, Map.of(), AttentionConfig.DEFAULT_BLOCK_SIZE, 0);
  }

  private boolean runs(Scheme scheme, int length) {
    return length <= longest.getOrDefault(scheme, Integer.MAX_VALUE);
  }

  /**
   * Runs every case on {@code engine}; {@code haystack} is prose for the needle tasks (null if only
   * the passkey runs); {@code progress} hears one line per case.
   */
  public List<EvalResult> run(Engine engine, String haystack, Consumer<String> progress) {
    Prompts prompts = new Prompts(engine, haystack);
    int trained = engine.config().maxPositionEmbeddings();
    int gathered = span > 0 ? span : trained;
    List<EvalResult> results = new ArrayList<>();
    int total = 0, done = 0;
    for (int length : lengths) {
      for (Scheme scheme : schemes) {
        total += runs(scheme, length) ? tasks.size() * depths.size() * needles : 0;
      }
    }
    for (Task task : tasks) {
      for (int length : lengths) {
        if (length >= engine.contextLength()) {
          throw new IllegalArgumentException("length " + length + " does not fit the engine's context of "
              + engine.contextLength() + " tokens (set the context length)");
        }
        for (int d = 0; d < depths.size(); d++) {
          for (int n = 0; n < needles; n++) {
            long caseSeed = seed ^ (31L * length + 1_000_003L * d + 7919L * n + task.ordinal());
            Prompts.Built p = prompts.build(task, length, depths.get(d), new SplittableRandom(caseSeed));
            for (Scheme scheme : schemes) {
              if (!runs(scheme, length)) {
                continue;
              }
              long t0 = System.nanoTime();
              GenerationResult r = engine.generate(engine.request(p.ids()).maxNewTokens(switch (task) {
                case PASSKEY -> 8;
                case NIAH_SINGLE, NIAH_MULTIKEY -> 24;
                case NIAH_MULTIVALUE -> 96;
              })
                  .attention(scheme.config(p.ids().length, trained, blockSize, gathered).validateFor(engine.config()))
                  .listener(new PrefillProgress(progress, scheme.label() + " " + p.ids().length + " tokens")).build());
              boolean correct = score(task, p.expected(), r.text());
              EvalResult e = new EvalResult(task, scheme, length, p.ids().length, depths.get(d), n, p.expected(),
                  r.text(), correct, (System.nanoTime() - t0) / 1e9, r.usage().prefillNanos() / 1e9);
              results.add(e);
              done++;
              progress.accept(String.format(Locale.ROOT,
                  "[%d/%d] %s %s %d tokens depth %.2f #%d: %s (expected %s, got %s) %.1fs, prefill %.2fs (%.0f tokens/s)",
                  done, total, task, scheme.label(), e.promptTokens(), e.depth(), n, correct ? "right" : "wrong",
                  e.expected(), e.answer().strip().replace('\n', ' '), e.seconds(), e.prefillSeconds(),
                  e.prefillTokensPerSecond()));
            }
          }
        }
      }
    }
    return results;
  }

  /** Reports a long prompt's prefill every quarter (short prompts finish before anyone waits). */
  private static final class PrefillProgress implements GenerationListener {
    private static final int LONG = 1 << 17;
    private final Consumer<String> progress;
    private final String what;
    private int quarter;

    PrefillProgress(Consumer<String> progress, String what) {
      this.progress = progress;
      this.what = what;
    }

    @Override
    public void onPrefillProgress(int done, int total, double tokensPerSecond) {
      if (total >= LONG && done * 4L >= (quarter + 1L) * total && done < total) {
        quarter = (int) (done * 4L / total);
        progress.accept(String.format(Locale.ROOT, "  %s: %d of %d prompt tokens read, %.0f tokens/s", what, done, total,
            tokensPerSecond));
      }
    }
  }

  /**
   * Landmark's passkey score (the first number is the key) or RULER's string_match_all: every one of
   * the comma-separated expected values appears in the answer.
   */
  static boolean score(Task task, String expected, String answer) {
    if (task == Task.PASSKEY) {
      Matcher m = NUMBER.matcher(answer);
      return m.find() && m.group().equals(expected);
    }
    String a = answer.toLowerCase(Locale.ROOT);
    return Arrays.stream(expected.split(",")).allMatch(v -> a.contains(v.strip().toLowerCase(Locale.ROOT)));
  }
}
