package dev.selma.engine.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.selma.engine.Engine;
import dev.selma.engine.EngineOptions;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.generate.DocumentReuse;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.GenerationResult;
import dev.selma.engine.generate.Generator;
import dev.selma.engine.kv.CacheOptions;
import dev.selma.engine.kv.ModelFingerprint;
import dev.selma.engine.kv.PrefixCache;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import dev.selma.engine.tokenizer.template.Message;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * What document reuse costs in accuracy on the demo model. Each demo question ({@code
 * demo-corpus/questions.json}) is asked over four passages of the demo documents (~2,400 characters
 * each): the one that states its answer and three that state other planted facts, in a shuffled
 * order, in the layout the model was trained on (so ~2.5K tokens, dense attention within its 4K
 * window). Passages recur from question to question in other combinations and orders, as retrieved
 * documents do. Runs, on one model and prefix cache:
 *
 * <ol>
 *   <li>exact, order A; exact, order B (how much the order alone moves the answers); no cached page
 *       is used, so that their prefill times are those of the whole prompt;
 *   <li>document reuse in order B, the cache cold: each passage is encoded the first time it comes;
 *   <li>document reuse in order A: every passage comes from the cache, encoded in earlier prompts;
 *   <li>the same with 16 and 32 boundary tokens;
 *   <li>document reuse with passages encoded alone (prefix 0) instead of after the prompt's prefix.
 * </ol>
 *
 * A question is right when the greedy answer contains its value (case-insensitive), as in the demo.
 * Right or wrong moves only when an approximation flips a token, so each run also reads, after a
 * second prefill of the same prompt, the model's distributions over the expected sentence's tokens
 * after the first (teacher-forced): their negative log-likelihood of the sentence, and their
 * Kullback-Leibler divergence from the exact run's, which measures how far an approximation moved
 * the model where it copies the answer. Prints a table and the answers a reuse run changed; the
 * whole run takes about 6 minutes on 2 cores.
 *
 * <pre>./mvnw -q -pl engine test-compile exec:exec -DskipTests -Dexec.executable=java \
 *   -Dexec.args="--add-modules jdk.incubator.vector -cp %classpath dev.selma.engine.eval.DocumentReuseEvaluation [questions]"</pre>
 */
public final class DocumentReuseEvaluation {
  private static final String SYSTEM = "Answer the question from the documents. Quote the sentence that answers it.";
  private static final int PASSAGE_CHARS = 2400, DISTRACTORS = 3, ANSWER_TOKENS = 32, CONTEXT = 4096,
      PREFILL_CHUNK = 512;
  private static final long ORDER_A = 1, ORDER_B = 2;

  private DocumentReuseEvaluation() {}

  record Question(String id, String question, String answer, String sentence) {}

  /** A window of a demo document around a planted fact. */
  record Passage(String docId, String title, String text) {}

  /** A prompt's tokens, where its documents lie, and the tokens of the expected answer. */
  record Prompt(int[] ids, DocumentReuse documents, int[] answer) {}

  /**
   * One question's answer and scores. {@code logProbs}: the model's log-probabilities at each position
   * of the expected sentence after its first token (kept for exact runs, the references); {@code kl}:
   * their mean Kullback-Leibler divergence from the reference's (the exact run in the same order; for
   * the exact run in order B, the one in order A).
   */
  record Run(boolean right, boolean exact, String answer, double nll, double kl, float[][] logProbs,
      long prefillNanos, int promptTokens, int cachedTokens) {}

  public static void main(String[] args) throws IOException {
    Path corpus = Path.of(System.getProperty("selma.repo", "..")).resolve("demo-corpus");
    ObjectMapper json = new ObjectMapper();
    JsonNode manifest = json.readTree(corpus.resolve("manifest.json").toFile());
    Map<String, JsonNode> docs = new HashMap<>();
    manifest.get("documents").forEach(d -> docs.put(d.get("id").asText(), d));
    List<Question> questions = new ArrayList<>();
    List<Passage> passages = new ArrayList<>();
    Random windows = new Random(20251122);
    for (JsonNode q : json.readTree(corpus.resolve("questions.json").toFile()).get("questions")) {
      questions.add(new Question(q.get("id").asText(), q.get("question").asText(), q.get("answer").asText(),
          q.get("answer_sentence").asText()));
      JsonNode doc = docs.get(q.get("doc_ids").get(0).asText());
      String text = Files.readString(corpus.resolve(doc.get("file").asText()), StandardCharsets.UTF_8);
      int at = text.offsetByCodePoints(0, q.get("char_offset").asInt());
      passages.add(new Passage(doc.get("id").asText(), doc.get("title").asText(),
          window(text, at, q.get("answer_sentence").asText().length(), windows)));
    }
    int n = args.length > 0 ? Math.min(Integer.parseInt(args[0]), questions.size()) : questions.size();
    int threads = Runtime.getRuntime().availableProcessors();
    Path modelFile = corpus.resolve("selma-demo.gguf");

    // The engine tokenizes and renders; the runs use a model, backend and prefix cache of their own,
    // so that the second pass of each question can read logits.
    try (Engine engine = Engine.load(EngineOptions.of(modelFile).withBackend(EngineOptions.BackendChoice.CPU)
            .withThreads(1).withCache(CacheOptions.disabled()));
        ModelFiles files = ModelLoader.open(modelFile);
        CpuBackend backend = new CpuBackend(threads);
        PrefixCache cache = new PrefixCache(CacheOptions.defaults(),
            ModelFingerprint.of(files.config(), files.weights()))) {
      Asker asker = new Asker(engine, new Llama(files.config(), files.weights(), backend), cache);
      Tokens tokens = new Tokens(engine);
      List<Prompt> orderA = new ArrayList<>(), orderB = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        List<Integer> chosen = choose(i, passages.size());
        orderA.add(tokens.prompt(questions.get(i), shuffled(chosen, ORDER_A * 1000 + i), passages));
        orderB.add(tokens.prompt(questions.get(i), shuffled(chosen, ORDER_B * 1000 + i), passages));
      }
      // Compile the kernels before anything is timed, on a prompt no run asks.
      asker.ask("warm-up", tokens.prompt(questions.get(0), shuffled(choose(0, passages.size()), 3), passages), null,
          questions.get(0), null);

      Map<String, List<Run>> runs = new LinkedHashMap<>();
      List<Run> exactA = asker.askAll("exact", orderA, null, questions, null);
      List<Run> exactB = asker.askAll("exact", orderB, null, questions, exactA);
      runs.put("exact, order A", exactA);
      runs.put("exact, order B", exactB);
      runs.put("reuse, order B, cache cold", asker.askAll("reuse", orderB, 0, questions, exactB));
      runs.put("reuse, order A", asker.askAll("reuse", orderA, 0, questions, exactA));
      runs.put("reuse + 16 boundary tokens, order A", asker.askAll("reuse k16", orderA, 16, questions, exactA));
      runs.put("reuse + 32 boundary tokens, order A", asker.askAll("reuse k32", orderA, 32, questions, exactA));
      List<Prompt> alone = orderA.stream()
          .map(p -> new Prompt(p.ids(), new DocumentReuse(0, p.documents().documents(), 0), p.answer())).toList();
      runs.put("reuse, passages encoded alone (prefix 0), order A",
          asker.askAll("alone", alone, 0, questions, exactA));

      System.out.printf(Locale.ROOT, "%n%d questions, 1 + %d passages each (%.0f prompt tokens on average), %s%n%n", n,
          DISTRACTORS, runs.get("exact, order A").stream().mapToInt(Run::promptTokens).average().orElse(0),
          backend.name());
      System.out.println("| run | right | exact sentence | NLL of the sentence | KL from exact | prefill s (mean)"
          + " | prompt tokens reused |");
      System.out.println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
      for (Map.Entry<String, List<Run>> e : runs.entrySet()) {
        List<Run> r = e.getValue();
        System.out.printf(Locale.ROOT, "| %s | %d/%d | %d/%d | %.2e | %.2e | %.2f | %.0f %% |%n", e.getKey(),
            r.stream().filter(Run::right).count(), n, r.stream().filter(Run::exact).count(), n,
            r.stream().mapToDouble(Run::nll).average().orElse(0), r.stream().mapToDouble(Run::kl).average().orElse(0),
            r.stream().mapToLong(Run::prefillNanos).average().orElse(0) / 1e9,
            100.0 * r.stream().mapToInt(Run::cachedTokens).sum() / r.stream().mapToInt(Run::promptTokens).sum());
      }
      System.out.println("\nAnswers that a reuse run changed (against the exact run in the same order):");
      for (Map.Entry<String, List<Run>> e : runs.entrySet()) {
        List<Run> exact = exactRun(runs, e.getKey());
        for (int i = 0; i < n; i++) {
          Run r = e.getValue().get(i);
          if (!r.answer().equals(exact.get(i).answer())) {
            System.out.printf(Locale.ROOT, "  %s, %s (%s): %s -> %s%n", e.getKey(), questions.get(i).id(),
                r.right() ? "right" : "wrong", exact.get(i).answer(), r.answer());
          }
        }
      }
    }
  }

  /** The exact run in the same order as run {@code name}. */
  private static List<Run> exactRun(Map<String, List<Run>> runs, String name) {
    return runs.get(name.contains("order B") ? "exact, order B" : "exact, order A");
  }

  /**
   * About {@link #PASSAGE_CHARS} characters of {@code text} that hold the {@code length} characters at
   * {@code at}, placed at a random depth, from a word's start to a word's end.
   */
  static String window(String text, int at, int length, Random random) {
    int before = random.nextInt(Math.max(1, PASSAGE_CHARS - length));
    int from = Math.max(0, at - before), to = Math.min(text.length(), from + PASSAGE_CHARS);
    while (from > 0 && !Character.isWhitespace(text.charAt(from - 1))) {
      from--;
    }
    while (to < text.length() && !Character.isWhitespace(text.charAt(to))) {
      to++;
    }
    return text.substring(from, to).strip();
  }

  /** The passage of question {@code q} and {@value #DISTRACTORS} others, the same for every run. */
  static List<Integer> choose(int q, int passages) {
    List<Integer> others = new ArrayList<>();
    for (int i = 0; i < passages; i++) {
      if (i != q) {
        others.add(i);
      }
    }
    Collections.shuffle(others, new Random(q));
    List<Integer> chosen = new ArrayList<>(others.subList(0, DISTRACTORS));
    chosen.add(q);
    return chosen;
  }

  static List<Integer> shuffled(List<Integer> passages, long seed) {
    List<Integer> order = new ArrayList<>(passages);
    Collections.shuffle(order, new Random(seed));
    return order;
  }

  /** Asks questions on its model, exactly or with document reuse through its prefix cache. */
  record Asker(Engine engine, Llama model, PrefixCache cache) {
    /** Asks every prompt, comparing with the {@code reference} run if any. */
    List<Run> askAll(String name, List<Prompt> prompts, Integer boundaryTokens, List<Question> questions,
        List<Run> reference) {
      List<Run> runs = new ArrayList<>();
      for (int i = 0; i < prompts.size(); i++) {
        DocumentReuse documents = boundaryTokens == null ? null
            : prompts.get(i).documents().withBoundaryTokens(boundaryTokens);
        runs.add(ask(name, prompts.get(i), documents, questions.get(i),
            reference == null ? null : reference.get(i).logProbs()));
      }
      return runs;
    }

    /**
     * Answers greedily with {@code documents} reused, or else exactly and without any cached page;
     * then, after a second prefill of the same prompt, reads the model's negative log-likelihood of
     * the expected sentence (its tokens after the first, teacher-forced).
     */
    Run ask(String name, Prompt prompt, DocumentReuse documents, Question q, float[][] reference) {
      GenerationRequest.Builder request = GenerationRequest.builder(prompt.ids()).stopTokens(engine.eosIds())
          .attention(engine.attentionFor(prompt.ids().length)).documents(documents);
      GenerationResult r;
      try (Sequence s = sequence(documents != null)) {
        r = Generator.generate(s, request.maxNewTokens(ANSWER_TOKENS).build(),
            engine.tokenizer().streamingDecoder(true)::next);
      }
      int[] answer = prompt.answer();
      float[][] logProbs;
      try (Sequence s = sequence(documents != null)) {
        Generator.generate(s, request.maxNewTokens(1).build(), null); // holds the prompt, and no more
        logProbs = s.appendAllLogits(Arrays.copyOf(answer, answer.length - 1));
      }
      double nll = 0, kl = 0;
      for (int i = 0; i < logProbs.length; i++) {
        logSoftmax(logProbs[i]);
        nll -= logProbs[i][answer[i + 1]] / logProbs.length;
        if (reference != null) {
          for (int v = 0; v < reference[i].length; v++) {
            kl += Math.exp(reference[i][v]) * (reference[i][v] - logProbs[i][v]) / logProbs.length;
          }
        }
      }
      String text = r.text().strip();
      boolean right = text.toLowerCase(Locale.ROOT).contains(q.answer().toLowerCase(Locale.ROOT));
      System.out.printf(Locale.ROOT, "%-9s %s %-5s %5.2f s  NLL %.2e  KL %.2e  %s%n", name, q.id(),
          right ? "RIGHT" : "wrong", r.usage().prefillNanos() / 1e9, nll, kl, text);
      return new Run(right, text.equals(q.sentence()), text, nll, kl, documents == null ? logProbs : null,
          r.usage().prefillNanos(), r.usage().promptTokens(), r.usage().cachedPromptTokens());
    }

    private Sequence sequence(boolean withCache) {
      Sequence s = model.newSequence(CONTEXT, PREFILL_CHUNK);
      if (withCache) {
        s.prefixCache(cache);
      }
      return s;
    }
  }

  /** Turns logits into log-probabilities, in place. */
  private static void logSoftmax(float[] logits) {
    double max = Double.NEGATIVE_INFINITY, sum = 0;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    for (float l : logits) {
      sum += Math.exp(l - max);
    }
    double norm = max + Math.log(sum);
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) (logits[i] - norm);
    }
  }

  /**
   * Prompts in the demo's layout with the token range of each passage's text. The rendered prompt is
   * encoded whole; a passage's range is where the encodings of the text before it and through it end,
   * which is exact because newlines (byte tokens) bound every passage. A passage must encode to the
   * same tokens in every prompt, or its keys could not be reused: checked.
   */
  static final class Tokens {
    private final Engine engine;
    private final Map<String, int[]> passageTokens = new HashMap<>();

    Tokens(Engine engine) {
      this.engine = engine;
    }

    Prompt prompt(Question question, List<Integer> order, List<Passage> passages) {
      StringBuilder user = new StringBuilder("Documents:\n\n");
      List<int[]> spans = new ArrayList<>();
      for (int k = 0; k < order.size(); k++) {
        Passage p = passages.get(order.get(k));
        user.append("[doc ").append(k + 1).append("] id: ").append(p.docId()).append(" | title: ").append(p.title())
            .append('\n');
        spans.add(new int[] {user.length(), user.length() + p.text().length(), order.get(k)});
        user.append(p.text()).append("\n\n");
      }
      user.append("Question: ").append(question.question());
      String rendered = engine.renderChat(List.of(Message.system(SYSTEM), Message.user(user.toString())), true,
          Map.of());
      int base = rendered.indexOf(user.toString());
      int[] ids = engine.tokenizer().encode(rendered, false);
      int prefix = prefixTokens(rendered, base + "Documents:\n\n".length(), ids);
      int[][] ranges = new int[spans.size()][];
      for (int k = 0; k < spans.size(); k++) {
        int from = prefixTokens(rendered, base + spans.get(k)[0], ids);
        int to = prefixTokens(rendered, base + spans.get(k)[1], ids);
        int[] mine = Arrays.copyOfRange(ids, from, to), seen = passageTokens.putIfAbsent("p" + spans.get(k)[2], mine);
        if (seen != null && !Arrays.equals(seen, mine)) {
          throw new IllegalStateException("passage " + spans.get(k)[2] + " encodes differently in another prompt");
        }
        ranges[k] = new int[] {from, to};
      }
      int[] withAnswer = engine.tokenizer().encode(rendered + " " + question.sentence(), false);
      if (!Arrays.equals(ids, 0, ids.length, withAnswer, 0, ids.length)) {
        throw new IllegalStateException("the answer's tokens would change the prompt's");
      }
      return new Prompt(ids, DocumentReuse.of(prefix, ranges), Arrays.copyOfRange(withAnswer, ids.length,
          withAnswer.length));
    }

    /** Tokens of {@code text[0, end)}, checked to be the first tokens of the whole prompt's. */
    private int prefixTokens(String text, int end, int[] whole) {
      int[] ids = engine.tokenizer().encode(text.substring(0, end), false);
      if (!Arrays.equals(ids, 0, ids.length, whole, 0, ids.length)) {
        throw new IllegalStateException("the prompt's tokens do not start with those of its first " + end
            + " characters");
      }
      return ids.length;
    }
  }
}
