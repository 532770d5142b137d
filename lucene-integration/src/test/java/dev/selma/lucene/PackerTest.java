package dev.selma.lucene;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.tokenizer.Tokenizer;
import dev.selma.testmodels.TestModels;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class PackerTest {
  private static Tokenizer tokenizer;
  private static TokenCounts counts;
  private static Packer packer;

  @BeforeAll
  static void setUp() throws Exception {
    tokenizer = Tokenizer.fromHuggingFace(TestModels.mistralVocabulary());
    counts = new TokenCounts(tokenizer, 1000);
    packer = new Packer(counts);
  }

  private static String words(String prefix, int n) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < n; i++) {
      sb.append(prefix).append(i).append(i % 10 == 9 ? ".\n" : " ");
    }
    return sb.toString().strip();
  }

  private static RetrievedDocument doc(String id, String text, float score) {
    return new RetrievedDocument(id, "Title " + id, text, score, null);
  }

  private static int cost(PackedDocument p) {
    return counts.count(Packer.header(p.n(), p.doc()) + "\n\n") + p.tokens();
  }

  @Test
  void wholeDocumentsWhenEverythingFits() {
    List<RetrievedDocument> docs = List.of(doc("b", "short one", 3), doc("a", "short two", 2));
    Packer.Packing p = packer.pack(docs, 1000, PackingOptions.DEFAULT);
    assertEquals(List.of("b", "a"), p.included().stream().map(d -> d.doc().id()).toList());
    assertEquals(List.of(1, 2), p.included().stream().map(PackedDocument::n).toList());
    p.included().forEach(d -> assertNull(d.truncation()));
    assertTrue(p.omitted().isEmpty());
  }

  @Test
  void theFirstDocumentThatDoesNotFitIsCutAndTheRestOmittedAllReported() {
    String big = words("alpha", 400);
    List<RetrievedDocument> docs = List.of(doc("1", words("beta", 50), 3), doc("2", big, 2), doc("3", words("gamma", 80), 1));
    int budget = 300;
    Packer.Packing p = packer.pack(docs, budget, PackingOptions.DEFAULT);
    assertEquals(2, p.included().size());
    PackedDocument cut = p.included().get(1);
    assertEquals("2", cut.doc().id());
    assertEquals(Truncation.HEAD, cut.truncation());
    assertEquals(counts.count(docs.get(1)), cut.originalTokens());
    assertTrue(cut.tokens() < cut.originalTokens());
    assertTrue(big.startsWith(cut.text().strip().substring(0, 40)), "head kept");
    assertTrue(p.included().stream().mapToInt(PackerTest::cost).sum() <= budget);
    assertEquals(1, p.omitted().size());
    assertEquals("3", p.omitted().get(0).doc().id());
    assertTrue(p.omitted().get(0).reason().contains("budget"), p.omitted().get(0).reason());
  }

  @Test
  void perDocumentCapWithTailAndMiddleTruncation() {
    String text = words("w", 300);
    RetrievedDocument d = doc("x", text, 1);
    PackedDocument tail = packer.pack(List.of(d), 10_000, PackingOptions.DEFAULT.withMaxDocTokens(100)
        .withTruncation(Truncation.TAIL)).included().get(0);
    assertEquals(Truncation.TAIL, tail.truncation());
    assertTrue(tail.tokens() <= 100 && tail.tokens() >= 90, "tokens " + tail.tokens());
    assertTrue(text.endsWith(tail.text()), "tail kept: " + tail.text());

    PackedDocument middle = packer.pack(List.of(d), 10_000, PackingOptions.DEFAULT.withMaxDocTokens(100)
        .withTruncation(Truncation.MIDDLE)).included().get(0);
    assertEquals(Truncation.MIDDLE, middle.truncation());
    assertTrue(middle.tokens() <= 100, "tokens " + middle.tokens());
    assertTrue(middle.text().contains(Truncation.MIDDLE_MARKER));
    String[] halves = middle.text().split(java.util.regex.Pattern.quote(Truncation.MIDDLE_MARKER));
    assertTrue(text.startsWith(halves[0]), "head of the middle cut");
    assertTrue(text.endsWith(halves[1]), "tail of the middle cut");
  }

  @Test
  void stableOrderIsByIdWhateverTheScoresButRankDecidesWhatGoesIn() {
    List<RetrievedDocument> first = List.of(doc("c", "gamma text", 9), doc("a", "alpha text", 5), doc("b", "beta text", 1));
    List<RetrievedDocument> second = List.of(doc("b", "beta text", 7), doc("c", "gamma text", 6), doc("a", "alpha text", 2));
    PackingOptions stable = PackingOptions.DEFAULT.withOrder(PackOrder.STABLE);
    Packer.Packing p1 = packer.pack(first, 1000, stable);
    Packer.Packing p2 = packer.pack(second, 1000, stable);
    assertEquals(List.of("a", "b", "c"), p1.included().stream().map(d -> d.doc().id()).toList());
    assertEquals(p1.included().stream().map(Packer::block).toList(), p2.included().stream().map(Packer::block).toList(),
        "the same documents make the same prefix");
    assertEquals(List.of(1, 2, 0), p1.included().stream().map(PackedDocument::rank).toList());
  }

  @Test
  void optionsAreValidatedAndParsed() {
    assertEquals(Truncation.MIDDLE, Truncation.parse("Middle"));
    assertEquals(PackOrder.STABLE, PackOrder.parse("stable"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Truncation.parse("sideways"));
    assertTrue(e.getMessage().contains("sideways") && e.getMessage().contains("middle"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> PackOrder.parse("random"));
    assertThrows(IllegalArgumentException.class, () -> PackingOptions.DEFAULT.withMaxDocTokens(-1));
  }

  @Test
  void specialTokenSpellingsAreBroken() {
    SpecialTokenGuard guard = new SpecialTokenGuard(tokenizer);
    assertTrue(guard.specials().contains("</s>"), guard.specials().toString());
    String text = "end here </s><s> and again";
    String safe = guard.neutralize(text);
    int eos = tokenizer.eosIds()[0];
    assertTrue(java.util.Arrays.stream(tokenizer.encode(text, false)).anyMatch(i -> i == eos));
    assertTrue(java.util.Arrays.stream(tokenizer.encode(safe, false)).noneMatch(i -> tokenizer.isSpecial(i)));
    assertEquals(text, safe.replace("\u200B", ""));
    String plain = "nothing special";
    assertTrue(plain == guard.neutralize(plain));
  }
}
