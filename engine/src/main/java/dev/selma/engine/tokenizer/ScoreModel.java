package dev.selma.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece's score-based BPE as llama.cpp runs it for GGUF files that carry token scores but no
 * merges: starting from one symbol per character, repeatedly join the adjacent pair whose
 * concatenation is the highest-scoring token (leftmost on ties). Every join makes a token, so a final
 * symbol that is not a token is a single character: it becomes its {@code <0xNN>} byte tokens (or the
 * unknown token).
 */
final class ScoreModel implements WordModel {
  private final Map<String, Integer> vocab;
  private final float[] scores;
  private final int[] byteIds = new int[256];
  private final int unkId;
  private final boolean splitsAtSpaces;

  ScoreModel(Map<String, Integer> vocab, float[] scores, boolean byteFallback, int unkId) {
    this.vocab = vocab;
    this.scores = scores;
    this.unkId = unkId;
    for (int b = 0; b < 256; b++) {
      Integer id = byteFallback ? vocab.get(String.format("<0x%02X>", b)) : null;
      byteIds[b] = id != null ? id : -1;
    }
    this.splitsAtSpaces = WordModel.splitsAtSpaces(vocab.keySet());
  }

  @Override
  public boolean splitsAtSpaces() {
    return splitsAtSpaces;
  }

  @Override
  public int byteId(int b) {
    return byteIds[b & 0xFF];
  }

  /** A candidate join of symbols {@code left} and {@code right}, valid while their lengths add to {@code size}. */
  private record Bigram(int left, int right, float score, int size) {}

  @Override
  public void encodeWord(String word, IntArray out, BpeModel.Scratch unused) {
    List<int[]> symbols = new ArrayList<>(); // {start, length in chars, prev, next}
    for (int i = 0; i < word.length(); ) {
      int n = Character.charCount(word.codePointAt(i));
      symbols.add(new int[] {i, n, symbols.size() - 1, i + n == word.length() ? -1 : symbols.size() + 1});
      i += n;
    }
    PriorityQueue<Bigram> queue = new PriorityQueue<>((a, b) ->
        a.score() != b.score() ? Float.compare(b.score(), a.score()) : Integer.compare(a.left(), b.left()));
    for (int i = 1; i < symbols.size(); i++) {
      offer(word, symbols, i - 1, i, queue);
    }
    while (!queue.isEmpty()) {
      Bigram top = queue.poll();
      int[] left = symbols.get(top.left());
      int[] right = symbols.get(top.right());
      if (left[1] == 0 || right[1] == 0 || left[1] + right[1] != top.size()) {
        continue; // one side has changed since this candidate was queued
      }
      left[1] += right[1];
      right[1] = 0;
      left[3] = right[3];
      if (right[3] >= 0) {
        symbols.get(right[3])[2] = top.left();
      }
      offer(word, symbols, left[2], top.left(), queue);
      offer(word, symbols, top.left(), left[3], queue);
    }
    for (int i = symbols.isEmpty() ? -1 : 0; i != -1; i = symbols.get(i)[3]) {
      emit(word, symbols.get(i), out);
    }
  }

  private void offer(String word, List<int[]> symbols, int left, int right, PriorityQueue<Bigram> queue) {
    if (left < 0 || right < 0) {
      return;
    }
    int[] l = symbols.get(left);
    int[] r = symbols.get(right);
    String text = word.substring(l[0], l[0] + l[1] + r[1]);
    Integer id = vocab.get(text);
    if (id == null) {
      return;
    }
    queue.add(new Bigram(left, right, scores[id], l[1] + r[1]));
  }

  private void emit(String word, int[] symbol, IntArray out) {
    String text = word.substring(symbol[0], symbol[0] + symbol[1]);
    Integer id = vocab.get(text);
    if (id != null) {
      out.add(id);
      return;
    }
    for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
      int byteId = byteIds[b & 0xFF];
      if (byteId < 0 && unkId < 0) {
        throw new IllegalArgumentException("\"" + text + "\" is not in the vocabulary, which has no byte tokens"
            + " and no unknown token");
      }
      out.add(byteId >= 0 ? byteId : unkId);
    }
  }
}
