package dev.selma.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.backend.ChoosingAhead;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.llama.Llama;
import dev.selma.engine.llama.RandomModel;
import dev.selma.engine.llama.Sequence;
import dev.selma.engine.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class GeneratorTest {
  private static final CpuBackend BACKEND = new CpuBackend(2);
  private static final ModelConfig CONFIG = RandomModel.config(50, 32, 2, 4, 2, false);
  private static final Llama MODEL = new Llama(CONFIG, RandomModel.weights(CONFIG, 11), BACKEND);
  /** The same model on a backend that chooses ahead: greedy steps are queued before the token is read. */
  private static final Llama AHEAD = new Llama(CONFIG, RandomModel.weights(CONFIG, 11), ChoosingAhead.of(BACKEND));
  private static final int[] PROMPT = {3, 14, 15, 9, 26, 5, 35};

  @AfterAll
  static void close() {
    BACKEND.close();
  }

  private static TokenTextStream words() {
    return t -> "w" + t + " ";
  }

  private static GenerationResult run(GenerationRequest r) {
    try (Sequence s = MODEL.newSequence(128, 4)) {
      return Generator.generate(s, r, words());
    }
  }

  @Test
  void greedyGenerationFollowsTheArgmaxOfRecomputedLogits() {
    GenerationResult r = run(GenerationRequest.builder(PROMPT).maxNewTokens(8).build());
    assertEquals(FinishReason.LENGTH, r.finishReason());
    assertEquals(8, r.tokens().length);
    int[] context = PROMPT.clone();
    for (int token : r.tokens()) {
      try (Sequence s = MODEL.newSequence(128, 128)) {
        assertEquals(Sampler.argmax(s.append(context)), token);
      }
      context = java.util.Arrays.copyOf(context, context.length + 1);
      context[context.length - 1] = token;
    }
    StringBuilder text = new StringBuilder();
    for (int t : r.tokens()) {
      text.append("w").append(t).append(' ');
    }
    assertEquals(text.toString(), r.text());
    assertEquals(new Usage(7, 0, 8, r.usage().prefillNanos(), r.usage().decodeNanos()), r.usage());
  }

  @Test
  void aStopTokenEndsGenerationAndIsNotPartOfTheOutput() {
    int[] free = run(GenerationRequest.builder(PROMPT).maxNewTokens(6).build()).tokens();
    GenerationResult r = run(GenerationRequest.builder(PROMPT).maxNewTokens(6).stopTokens(free[3]).build());
    assertEquals(FinishReason.STOP, r.finishReason());
    int firstStop = 0;
    while (free[firstStop] != free[3]) {
      firstStop++;
    }
    assertArrayEquals(java.util.Arrays.copyOf(free, firstStop), r.tokens());
  }

  @Test
  void aStopSequenceEndsGenerationAndIsCutFromTheText() {
    int[] free = run(GenerationRequest.builder(PROMPT).maxNewTokens(6).build()).tokens();
    String stop = "w" + free[2] + " w";
    GenerationResult r = run(GenerationRequest.builder(PROMPT).maxNewTokens(6).stopSequences(List.of(stop)).build());
    assertEquals(FinishReason.STOP, r.finishReason());
    assertTrue(!r.text().contains(stop));
  }

  @Test
  void theSameSeedGivesTheSameSampledOutput() {
    SamplingParams p = SamplingParams.GREEDY.withTemperature(1.2).withTopP(0.9).withSeed(99);
    GenerationResult a = run(GenerationRequest.builder(PROMPT).maxNewTokens(12).sampling(p).build());
    GenerationResult b = run(GenerationRequest.builder(PROMPT).maxNewTokens(12).sampling(p).build());
    assertArrayEquals(a.tokens(), b.tokens());
  }

  /**
   * Under Selection.QUERY the prompt's last token runs as a decode step of its own, choosing blocks
   * with its own query, and from there on the sequence's keys and values are not a prefill's.
   */
  @Test
  void underQuerySelectionThePromptsLastTokenRunsAloneAndLaterPagesAreInexact() {
    int[] prompt = new java.util.SplittableRandom(4).ints(120, 0, 50).toArray();
    for (AttentionConfig.Selection selection : AttentionConfig.Selection.values()) {
      AttentionConfig c = AttentionConfig.selectAndMerge(16, 2, 2, 1, 1).withSelection(selection);
      boolean query = selection == AttentionConfig.Selection.QUERY;
      assertEquals(query, c.tokenChooses(119));
      try (Sequence s = MODEL.newSequence(160, 64)) {
        GenerationResult r = Generator.generate(s,
            GenerationRequest.builder(prompt).attention(c).maxNewTokens(6).build(), words());
        assertEquals(query ? 119 : s.length(), s.exactLength(), selection.label());
        // The same tokens, the prompt run in chunks of 64 but its last token alone under QUERY.
        try (Sequence manual = MODEL.newSequence(160, 64)) {
          manual.attention(c);
          float[] logits = manual.append(query ? java.util.Arrays.copyOf(prompt, 119) : prompt);
          if (query) {
            logits = manual.append(new int[] {prompt[119]});
          }
          int[] expected = new int[6];
          for (int i = 0; i < expected.length; i++) {
            expected[i] = Sampler.argmax(logits);
            logits = manual.append(new int[] {expected[i]});
          }
          assertArrayEquals(expected, r.tokens(), selection.label());
        }
      }
    }
  }

  /**
   * Under Selection.QUERY only a token appended alone to sample from chooses by its own query: a
   * prefill, a longer append whose last chunk is one token and a truncation's recompute stay exact.
   */
  @Test
  void underQuerySelectionOnlyADecodeStepIsInexact() {
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 2, 2, 1, 1).withSelection(AttentionConfig.Selection.QUERY);
    int[] tokens = new java.util.SplittableRandom(6).ints(121, 0, 50).toArray(); // chunks of 4: the last is 1
    try (Sequence s = MODEL.newSequence(160, 4)) {
      s.attention(c);
      s.prefill(java.util.Arrays.copyOf(tokens, 113));
      s.appendToSample(java.util.Arrays.copyOfRange(tokens, 113, 121));
      assertEquals(121, s.exactLength());
      s.truncate(117); // recomputes from a block-sum boundary, the last chunk one token
      assertEquals(117, s.exactLength());
      s.appendToSample(new int[] {7});
      assertEquals(117, s.exactLength());
      assertEquals(118, s.length());
    }
  }

  @Test
  void logitsLeftOnTheBackendAreGoneOnceTheSequenceAppendsAgain() {
    try (Sequence s = MODEL.newSequence(128, 4)) {
      dev.selma.engine.backend.Logits first = s.appendToSample(PROMPT);
      assertEquals(Sampler.argmax(first.all()), first.top(1, 0).ids()[0]);
      s.prefill(new int[] {1, 2});
      assertThrows(IllegalStateException.class, first::all);
    }
  }

  @Test
  void aSequenceReusesThePromptPrefixItAlreadyHolds() {
    GenerationResult cold = run(GenerationRequest.builder(PROMPT).maxNewTokens(5).build());
    try (Sequence s = MODEL.newSequence(128, 4)) {
      s.append(new int[] {3, 14, 15, 9, 40, 41});
      GenerationResult warm = Generator.generate(s, GenerationRequest.builder(PROMPT).maxNewTokens(5).build(), words());
      assertEquals(4, warm.usage().cachedPromptTokens());
      assertArrayEquals(cold.tokens(), warm.tokens());
    }
  }

  /** Also with steps queued ahead of reading their tokens (AHEAD). */
  @Test
  void cancellationFromAnotherThreadStopsTheGeneration() throws Exception {
    for (Llama model : List.of(MODEL, AHEAD)) {
      cancelledFromAnotherThread(model);
    }
  }

  private static void cancelledFromAnotherThread(Llama model) throws Exception {
    CancellationToken cancel = new CancellationToken();
    CountDownLatch started = new CountDownLatch(1);
    AtomicInteger seen = new AtomicInteger();
    GenerationListener listener = new GenerationListener() {
      @Override
      public void onToken(int token, String text) {
        seen.incrementAndGet();
        started.countDown();
        try {
          Thread.sleep(5);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    };
    List<GenerationResult> result = new ArrayList<>();
    Thread t = new Thread(() -> {
      try (Sequence s = model.newSequence(128, 4)) {
        result.add(Generator.generate(s, GenerationRequest.builder(PROMPT).maxNewTokens(100_000).listener(listener)
            .cancellation(cancel).build(), words()));
      }
    });
    t.start();
    started.await();
    cancel.cancel();
    t.join(10_000);
    assertEquals(FinishReason.CANCELLED, result.getFirst().finishReason());
    assertTrue(result.getFirst().tokens().length < 100, "stopped after " + seen.get() + " tokens");
  }

  /**
   * Greedy generation that queues each step before reading its token (as on a GPU) gives what generation
   * step by step gives, for every way a generation ends; when a stop token ends it, the sequence also
   * holds that token, whose step was already queued.
   */
  @Test
  void greedyStepsQueuedAheadGiveWhatStepsOneByOneGive() {
    int[] free = run(GenerationRequest.builder(PROMPT).maxNewTokens(8).build()).tokens();
    List<GenerationRequest> requests = List.of(GenerationRequest.builder(PROMPT).maxNewTokens(8).build(),
        GenerationRequest.builder(PROMPT).maxNewTokens(1).build(),
        GenerationRequest.builder(PROMPT).maxNewTokens(8).stopTokens(free[3]).build(),
        GenerationRequest.builder(PROMPT).maxNewTokens(8).stopTokens(free[0]).build(),
        GenerationRequest.builder(PROMPT).maxNewTokens(8).stopSequences(List.of("w" + free[2] + " w")).build(),
        GenerationRequest.builder(PROMPT).maxNewTokens(100).build());
    for (GenerationRequest r : requests) {
      for (int capacity : new int[] {128, 12}) {
        try (Sequence one = MODEL.newSequence(capacity, 4); Sequence ahead = AHEAD.newSequence(capacity, 4)) {
          assertTrue(ahead.choosesAhead());
          GenerationResult a = Generator.generate(one, r, words()), b = Generator.generate(ahead, r, words());
          assertArrayEquals(a.tokens(), b.tokens());
          assertEquals(a.text(), b.text());
          assertEquals(a.finishReason(), b.finishReason());
          assertEquals(a.usage().generatedTokens(), b.usage().generatedTokens());
          int[] held = one.tokens(), aheadHeld = ahead.tokens();
          if (a.finishReason() == FinishReason.STOP) {
            // the step for the token that ended it was queued before the token was read
            assertEquals(held.length + 1, aheadHeld.length);
            assertArrayEquals(held, java.util.Arrays.copyOf(aheadHeld, held.length));
            int last = r.stopSequences().isEmpty() ? r.stopTokens()[0] : a.tokens()[a.tokens().length - 1];
            assertEquals(last, aheadHeld[held.length]);
          } else {
            assertArrayEquals(held, aheadHeld);
          }
        }
      }
    }
  }

  @Test
  void aFullContextEndsWithLengthAndAnOversizedPromptIsRejected() {
    try (Sequence s = MODEL.newSequence(12, 4)) {
      GenerationResult r = Generator.generate(s, GenerationRequest.builder(PROMPT).maxNewTokens(100).build(), words());
      assertEquals(FinishReason.LENGTH, r.finishReason());
      assertEquals(12 - PROMPT.length, r.tokens().length);
    }
    try (Sequence s = MODEL.newSequence(7, 4)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> Generator.generate(s, GenerationRequest.builder(PROMPT).build(), words()));
      assertEquals("the prompt has 7 tokens but the context holds at most 7 (prompt and answer together)",
          e.getMessage());
    }
  }
}
