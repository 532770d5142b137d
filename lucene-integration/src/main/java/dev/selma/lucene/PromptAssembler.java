package dev.selma.lucene;

import dev.selma.engine.Engine;
import dev.selma.engine.tokenizer.template.Message;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Builds the answer prompt: through the model's chat template, a system message with the instructions
 * and one user message with the documents first and the question last, so that the documents form a
 * prefix that questions over the same documents share:
 *
 * <pre>
 * Documents:
 *
 * [doc 1] id: {id} | title: {title}
 * {text}
 *
 * ...
 * Question: {question}
 * </pre>
 *
 * The documents are packed into what the budget leaves after the answer's tokens and the template,
 * instructions and question; the encoded prompt is then checked against that limit and the lowest
 * ranked document cut further (or dropped) until it fits exactly.
 */
public final class PromptAssembler {
  public static final String DEFAULT_SYSTEM =
      "Answer the question from the documents. Quote the sentence that answers it.";
  private static final String DOCUMENTS = "Documents:\n\n";
  private static final String QUESTION = "Question: ";

  private final Engine engine;
  private final TokenCounts counts;
  private final SpecialTokenGuard guard;
  private final Packer packer;

  public PromptAssembler(Engine engine, TokenCounts counts) {
    this.engine = engine;
    this.counts = counts;
    this.guard = new SpecialTokenGuard(counts.tokenizer());
    this.packer = new Packer(counts);
  }

  /**
   * What to assemble.
   *
   * @param system the system instructions (null: {@link #DEFAULT_SYSTEM})
   * @param question the question
   * @param docs the retrieved documents, best first
   * @param budget the most tokens of prompt and answer together (0: the engine's context length;
   *     never more than that)
   * @param maxNewTokens the answer's token allowance, kept free in the budget
   * @param packing how documents are packed
   */
  public record Request(String system, String question, List<RetrievedDocument> docs, int budget, int maxNewTokens,
      PackingOptions packing) {
    public Request {
      Objects.requireNonNull(question, "question");
      docs = List.copyOf(docs);
      Objects.requireNonNull(packing, "packing");
    }
  }

  /**
   * Assembles the prompt.
   *
   * @throws IllegalArgumentException if the budget leaves no room for the answer or for documents
   */
  public AssembledPrompt assemble(Request r) {
    int context = engine.contextLength();
    if (r.budget() < 0) {
      throw new IllegalArgumentException("the token budget must be >= 0 (0 = the model's context), got " + r.budget());
    }
    if (r.maxNewTokens() < 1) {
      throw new IllegalArgumentException("max new tokens must be >= 1, got " + r.maxNewTokens());
    }
    int total = r.budget() == 0 ? context : Math.min(r.budget(), context);
    int promptLimit = total - r.maxNewTokens();
    if (promptLimit <= 0) {
      throw new IllegalArgumentException("the answer's " + r.maxNewTokens() + " new tokens leave no room for a prompt"
          + " in a budget of " + total + " tokens (the model's context holds " + context + ")");
    }
    String system = guard.neutralize(r.system() == null ? DEFAULT_SYSTEM : r.system());
    String question = guard.neutralize(r.question());
    List<RetrievedDocument> docs = r.docs().stream()
        .map(d -> new RetrievedDocument(guard.neutralize(d.id()), guard.neutralize(d.title()),
            guard.neutralize(d.text()), d.score(), d.version()))
        .toList();

    int overhead = encode(system, user(List.of(), question)).length;
    // A few tokens of slack for seams between separately counted pieces; the exact check follows.
    int slack = 4 + Math.min(docs.size(), 64);
    int docBudget = promptLimit - overhead - slack;
    if (!docs.isEmpty() && docBudget < Math.min(r.packing().minDocTokens(), 16) + 8) {
      throw new IllegalArgumentException("the token budget of " + total + " leaves no room for documents: the answer"
          + " takes " + r.maxNewTokens() + " tokens and the instructions and question " + overhead);
    }
    Packer.Packing packing = packer.pack(docs, Math.max(0, docBudget), r.packing());
    List<PackedDocument> included = new ArrayList<>(packing.included());
    List<OmittedDocument> omitted = new ArrayList<>(packing.omitted());
    while (true) {
      String userText = user(included, question);
      int[] ids = encode(system, userText);
      if (ids.length <= promptLimit || included.isEmpty()) {
        if (ids.length > promptLimit) {
          throw new IllegalArgumentException("the prompt has " + ids.length + " tokens without any document but the"
              + " budget allows " + promptLimit + " (the answer takes " + r.maxNewTokens() + ")");
        }
        omitted.sort(java.util.Comparator.comparingInt(OmittedDocument::rank));
        String text = render(system, userText);
        int at = text.indexOf(DOCUMENTS);
        int prefix = at < 0 ? 0 : encodeText(text.substring(0, at + DOCUMENTS.length())).length;
        return new AssembledPrompt(ids, text, List.copyOf(included), List.copyOf(omitted), overhead, promptLimit,
            spans(text, ids.length, included), prefix, documentTexts(text, ids, prefix, included));
      }
      shrinkLowestRanked(included, omitted, ids.length - promptLimit, r.packing());
    }
  }

  /** Cuts {@code over} (+ slack) more tokens from the lowest ranked included document, or drops it. */
  private void shrinkLowestRanked(List<PackedDocument> included, List<OmittedDocument> omitted, int over,
      PackingOptions options) {
    PackedDocument last = included.stream().max(java.util.Comparator.comparingInt(PackedDocument::rank)).orElseThrow();
    int keep = last.tokens() - over - 2;
    List<PackedDocument> rest = new ArrayList<>(included);
    rest.remove(last);
    if (keep < Math.min(last.originalTokens(), options.minDocTokens()) || keep <= 0) {
      omitted.add(new OmittedDocument(last.rank(), last.doc(), last.originalTokens(),
          "over the token budget once the prompt was encoded"));
    } else {
      rest.add(packer.cut(last.n(), last.rank(), last.doc(), last.originalTokens(), keep, options.truncation()));
    }
    List<PackedDocument> renumbered = Packer.order(rest, options.order());
    included.clear();
    included.addAll(renumbered);
  }

  /** Where each document lies in the prompt's tokens. */
  private List<AssembledPrompt.Span> spans(String text, int total, List<PackedDocument> included) {
    int at = text.indexOf(DOCUMENTS);
    if (at < 0 || included.isEmpty()) {
      return List.of();
    }
    int from = encodeText(text.substring(0, at + DOCUMENTS.length())).length;
    List<AssembledPrompt.Span> spans = new ArrayList<>();
    for (PackedDocument p : included) {
      int to = Math.min(total, from + counts.count(Packer.header(p.n(), p.doc()) + "\n\n") + p.tokens());
      spans.add(new AssembledPrompt.Span(p.n(), Math.min(from, to), to));
      from = to;
    }
    return List.copyOf(spans);
  }

  /**
   * The exact token ranges of the documents' texts: a document qualifies when the prompt's tokens up
   * to the start and up to the end of its text are exactly the encodings of the text before those
   * points, so that no token straddles its edges.
   */
  private List<AssembledPrompt.Span> documentTexts(String text, int[] ids, int prefix, List<PackedDocument> included) {
    List<AssembledPrompt.Span> out = new ArrayList<>();
    int searchFrom = text.indexOf(DOCUMENTS);
    if (searchFrom < 0) {
      return List.of();
    }
    for (PackedDocument p : included) {
      String header = Packer.header(p.n(), p.doc());
      int start = text.indexOf(header, searchFrom);
      if (start < 0) {
        return List.copyOf(out);
      }
      int textStart = start + header.length(), textEnd = textStart + p.text().length();
      searchFrom = textEnd;
      int from = tokenBoundary(text, ids, textStart), to = tokenBoundary(text, ids, textEnd);
      if (from >= prefix && from >= 0 && to > from) {
        out.add(new AssembledPrompt.Span(p.n(), from, to));
      }
    }
    return List.copyOf(out);
  }

  /** How many of {@code ids} encode {@code text[0, at)}, or -1 if {@code at} falls inside a token. */
  private int tokenBoundary(String text, int[] ids, int at) {
    int[] head = encodeText(text.substring(0, at));
    return head.length <= ids.length && java.util.Arrays.equals(head, 0, head.length, ids, 0, head.length)
        ? head.length : -1;
  }

  /** The tokens of a piece of the rendered prompt, as the whole prompt is encoded. */
  private int[] encodeText(String piece) {
    return engine.hasChatTemplate() ? counts.tokenizer().encode(piece, false) : counts.tokenizer().encode(piece, true);
  }

  /** The user message. */
  static String user(List<PackedDocument> included, String question) {
    StringBuilder sb = new StringBuilder(DOCUMENTS);
    for (PackedDocument p : included) {
      sb.append(Packer.block(p));
    }
    return sb.append(QUESTION).append(question).toString();
  }

  private String render(String system, String user) {
    if (engine.hasChatTemplate()) {
      return engine.renderChat(List.of(Message.system(system), Message.user(user)), true, Map.of());
    }
    return plain(system, user);
  }

  private int[] encode(String system, String user) {
    if (engine.hasChatTemplate()) {
      return engine.encodeChat(system, user);
    }
    return engine.tokenizer().encode(plain(system, user), true);
  }

  /** The prompt of a model without a chat template. */
  private static String plain(String system, String user) {
    return system + "\n\n" + user + "\nAnswer:";
  }
}
