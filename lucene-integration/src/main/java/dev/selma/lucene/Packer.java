package dev.selma.lucene;

import dev.selma.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Fills a token budget with documents. Documents are taken by rank (the retrieved order); each gets
 * at most {@link PackingOptions#maxDocTokens()} tokens of text, and the first one that does not fit
 * what is left is cut to fit (or omitted when less than {@link PackingOptions#minDocTokens()} would be
 * left of it). Every cut and every omission is reported.
 */
public final class Packer {
  private final TokenCounts counts;

  public Packer(TokenCounts counts) {
    this.counts = counts;
  }

  /** The header line of document {@code n} in the prompt. */
  public static String header(int n, RetrievedDocument d) {
    return "[doc " + n + "] id: " + d.id() + " | title: " + d.title() + "\n";
  }

  /** A document's block in the prompt: header, text, blank line. */
  public static String block(PackedDocument p) {
    return header(p.n(), p.doc()) + p.text() + "\n\n";
  }

  /** The result of packing. */
  public record Packing(List<PackedDocument> included, List<OmittedDocument> omitted) {
    /** Text tokens of the included documents. */
    public int textTokens() {
      return included.stream().mapToInt(PackedDocument::tokens).sum();
    }
  }

  /**
   * Packs {@code docs} (best first) into {@code budget} tokens, headers included.
   */
  public Packing pack(List<RetrievedDocument> docs, int budget, PackingOptions options) {
    List<PackedDocument> in = new ArrayList<>();
    List<OmittedDocument> out = new ArrayList<>();
    int left = budget;
    for (int rank = 0; rank < docs.size(); rank++) {
      RetrievedDocument d = docs.get(rank);
      int headerTokens = counts.count(header(in.size() + 1, d) + "\n\n");
      int whole = counts.count(d);
      int cap = options.maxDocTokens() > 0 ? Math.min(whole, options.maxDocTokens()) : whole;
      int allowed = Math.min(cap, left - headerTokens);
      if (allowed < Math.min(cap, options.minDocTokens())) {
        out.add(new OmittedDocument(rank, d, whole, left <= 0
            ? "the token budget was full"
            : "over the token budget: " + (headerTokens + cap) + " tokens needed, " + left + " left"));
        continue;
      }
      PackedDocument p = allowed >= whole
          ? new PackedDocument(in.size() + 1, rank, d, d.text(), whole, whole, null)
          : cut(in.size() + 1, rank, d, whole, allowed, options.truncation());
      in.add(p);
      left -= headerTokens + p.tokens();
    }
    return new Packing(order(in, options.order()), out);
  }

  /** {@code included} arranged in {@code order} and numbered from 1. */
  static List<PackedDocument> order(List<PackedDocument> included, PackOrder order) {
    List<PackedDocument> sorted = new ArrayList<>(included);
    if (order == PackOrder.STABLE) {
      sorted.sort(Comparator.comparing((PackedDocument p) -> p.doc().id()).thenComparingInt(PackedDocument::rank));
    } else {
      sorted.sort(Comparator.comparingInt(PackedDocument::rank));
    }
    List<PackedDocument> numbered = new ArrayList<>(sorted.size());
    for (int i = 0; i < sorted.size(); i++) {
      numbered.add(sorted.get(i).withN(i + 1));
    }
    return List.copyOf(numbered);
  }

  /** {@code d} cut to at most {@code limit} text tokens. */
  PackedDocument cut(int n, int rank, RetrievedDocument d, int whole, int limit, Truncation how) {
    Tokenizer tok = counts.tokenizer();
    int[] ids = tok.encode(d.text(), false);
    int target = limit;
    for (int attempt = 0; attempt < 8 && target > 0; attempt++) {
      String text = cutText(tok, ids, target, how);
      int tokens = counts.count(text);
      if (tokens <= limit) {
        return new PackedDocument(n, rank, d, text, tokens, whole, how);
      }
      // Re-encoding decoded pieces may merge differently at the seams: cut a little more.
      target -= Math.max(1, tokens - limit);
    }
    return new PackedDocument(n, rank, d, "", 0, whole, how);
  }

  private static String cutText(Tokenizer tok, int[] ids, int keep, Truncation how) {
    if (keep >= ids.length) {
      return tok.decode(ids, false);
    }
    return switch (how) {
      case HEAD -> tok.decode(Arrays.copyOfRange(ids, 0, keep), false);
      case TAIL -> tok.decode(Arrays.copyOfRange(ids, ids.length - keep, ids.length), false).stripLeading();
      case MIDDLE -> {
        int marker = tok.encode(Truncation.MIDDLE_MARKER, false).length;
        int rest = Math.max(0, keep - marker);
        int head = (rest + 1) / 2;
        int tail = rest - head;
        yield tok.decode(Arrays.copyOfRange(ids, 0, head), false) + Truncation.MIDDLE_MARKER
            + tok.decode(Arrays.copyOfRange(ids, ids.length - tail, ids.length), false).stripLeading();
      }
    };
  }
}
