package dev.selma.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A BPE model as Hugging Face's {@code tokenizers} runs it: a word starts as one symbol per character
 * (byte-level vocabularies: per byte), and the adjacent pair with the lowest merge rank is merged,
 * leftmost first on ties, until no pair has a merge. Symbols form a linked list over arrays and
 * candidate merges wait in a binary heap, so a word of n symbols costs O(n log n).
 *
 * <p>Two vocabulary styles: byte-level (each byte of the UTF-8 text is a symbol spelled through
 * {@link ByteLevel}; Llama 3 and Qwen) and SentencePiece-style (each character is a symbol; a
 * character missing from the vocabulary becomes its UTF-8 bytes as {@code <0xNN>} tokens with
 * byte fallback, else the unknown token; Llama 2 and Mistral).
 */
final class BpeModel implements WordModel {
  /** Words longer than this (in chars) are not cached: they are rare, and would crowd the cache. */
  private static final int CACHED_WORD_CHARS = 64;
  private static final int CACHE_ENTRIES = 100_000;
  private static final long NO_MERGE = -1L;

  final boolean byteLevel;
  final Map<String, Integer> vocab;
  /** Merges in rank order, as pairs of token ids. */
  final int[] mergeLeft;
  final int[] mergeRight;
  final boolean ignoreMerges;
  final boolean byteFallback;
  final boolean fuseUnk;
  /** The unknown token's id, or -1. */
  final int unkId;

  /** (left id << 32 | right id) → (rank << 32 | merged id). */
  private final LongLongMap merges;
  /** The merged token of each rank. */
  private final int[] mergedIds;
  /** Byte-level: the id of each byte's symbol. SentencePiece: the id of {@code <0xNN>}, or -1. */
  private final int[] byteIds = new int[256];
  /** SentencePiece: code point → id of the one-character token. */
  private final LongLongMap charIds;
  private final boolean splitsAtSpaces;
  private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

  BpeModel(boolean byteLevel, Map<String, Integer> vocab, int[] mergeLeft, int[] mergeRight,
      boolean ignoreMerges, boolean byteFallback, boolean fuseUnk, int unkId) {
    this.byteLevel = byteLevel;
    this.vocab = vocab;
    this.mergeLeft = mergeLeft;
    this.mergeRight = mergeRight;
    this.ignoreMerges = ignoreMerges;
    this.byteFallback = byteFallback;
    this.fuseUnk = fuseUnk;
    this.unkId = unkId;
    this.merges = new LongLongMap(mergeLeft.length);
    this.mergedIds = new int[mergeLeft.length];
    String[] spelling = new String[vocab.size() == 0 ? 0 : maxId(vocab) + 1];
    vocab.forEach((t, id) -> spelling[id] = t);
    for (int rank = 0; rank < mergeLeft.length; rank++) {
      // Callers have checked that the merged token exists; a repeated pair keeps its last rank, as in HF.
      int merged = vocab.get(spelling[mergeLeft[rank]] + spelling[mergeRight[rank]]);
      mergedIds[rank] = merged;
      merges.put(pair(mergeLeft[rank], mergeRight[rank]), ((long) rank << 32) | merged);
    }
    if (byteLevel) {
      charIds = null;
      for (int b = 0; b < 256; b++) {
        Integer id = vocab.get(String.valueOf(ByteLevel.charOf(b)));
        byteIds[b] = id != null ? id : unkId;
      }
      splitsAtSpaces = false;
    } else {
      charIds = new LongLongMap(vocab.size());
      for (Map.Entry<String, Integer> e : vocab.entrySet()) {
        String t = e.getKey();
        if (!t.isEmpty() && t.codePointCount(0, t.length()) == 1) {
          charIds.put(t.codePointAt(0), e.getValue());
        }
      }
      splitsAtSpaces = WordModel.splitsAtSpaces(vocab.keySet());
      for (int b = 0; b < 256; b++) {
        Integer id = vocab.get(String.format("<0x%02X>", b));
        byteIds[b] = id != null ? id : -1;
      }
    }
  }

  private static int maxId(Map<String, Integer> vocab) {
    int max = 0;
    for (int id : vocab.values()) {
      max = Math.max(max, id);
    }
    return max;
  }

  private static long pair(int left, int right) {
    return ((long) left << 32) | (right & 0xFFFFFFFFL);
  }

  /** The token made by the merge of this rank. */
  int mergedId(int rank) {
    return mergedIds[rank];
  }

  @Override
  public boolean splitsAtSpaces() {
    return splitsAtSpaces;
  }

  @Override
  public int byteId(int b) {
    return byteIds[b & 0xFF];
  }

  @Override
  public void encodeWord(String word, IntArray out, Scratch scratch) {
    boolean cacheable = word.length() <= CACHED_WORD_CHARS;
    if (cacheable) {
      int[] hit = cache.get(word);
      if (hit != null) {
        out.addAll(hit);
        return;
      }
    }
    int start = out.size();
    encodeUncached(word, out, scratch);
    if (cacheable) {
      if (cache.size() >= CACHE_ENTRIES) {
        cache.clear();
      }
      cache.put(word, out.copyOfRange(start, out.size()));
    }
  }

  private void encodeUncached(String word, IntArray out, Scratch s) {
    if (word.isEmpty()) {
      return;
    }
    if (byteLevel) {
      byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
      if (ignoreMerges) {
        Integer whole = vocab.get(ByteLevel.encode(bytes, 0, bytes.length));
        if (whole != null) {
          out.add(whole);
          return;
        }
      }
      s.reset(bytes.length);
      for (byte b : bytes) {
        s.push(byteIds[b & 0xFF]);
      }
    } else {
      s.reset(word.length());
      int pendingUnk = 0;
      for (int i = 0; i < word.length(); ) {
        int cp = word.codePointAt(i);
        i += Character.charCount(cp);
        long id = charIds.get(cp, -1);
        if (id >= 0) {
          pendingUnk = flushUnk(s, pendingUnk);
          s.push((int) id);
          continue;
        }
        if (byteFallback && pushBytes(s, cp, pendingUnk)) {
          pendingUnk = 0;
          continue;
        }
        if (unkId < 0) {
          throw new IllegalArgumentException(
              "character U+" + Integer.toHexString(cp).toUpperCase() + " is not in the vocabulary, which has no unknown token");
        }
        if (!fuseUnk) {
          pendingUnk = flushUnk(s, pendingUnk);
        }
        pendingUnk++;
      }
      flushUnk(s, pendingUnk);
    }
    mergeAll(s);
    for (int i = 0; i != -1; i = s.next[i]) {
      out.add(s.sym[i]);
    }
  }

  private int flushUnk(Scratch s, int pendingUnk) {
    if (pendingUnk > 0) {
      s.push(unkId);
    }
    return 0;
  }

  /** Pushes the byte-fallback tokens of one character; false (nothing pushed) if one is missing. */
  private boolean pushBytes(Scratch s, int cp, int pendingUnk) {
    byte[] bytes = Character.toString(cp).getBytes(StandardCharsets.UTF_8);
    for (byte b : bytes) {
      if (byteIds[b & 0xFF] < 0) {
        return false;
      }
    }
    flushUnk(s, pendingUnk);
    for (byte b : bytes) {
      s.push(byteIds[b & 0xFF]);
    }
    return true;
  }

  /**
   * Applies merges until none applies. Mirrors HF's {@code Word::merge_all}, including how it skips
   * stale heap entries: an entry is applied if the pair now at its position merges into the same
   * token, even if the pair changed.
   */
  private void mergeAll(Scratch s) {
    int n = s.count;
    for (int i = 0; i + 1 < n; i++) {
      long m = merges.get(pair(s.sym[i], s.sym[i + 1]), NO_MERGE);
      if (m != NO_MERGE) {
        s.heapPush((m & 0xFFFFFFFF00000000L) | i);
      }
    }
    while (s.heapSize > 0) {
      long top = s.heapPop();
      int rank = (int) (top >>> 32);
      int pos = (int) top;
      int right = s.next[pos];
      if (s.removed[pos] || right == -1) {
        continue;
      }
      long m = merges.get(pair(s.sym[pos], s.sym[right]), NO_MERGE);
      int merged = (int) m;
      if (m == NO_MERGE || merged != mergedIds[rank]) {
        continue;
      }
      s.sym[pos] = merged;
      s.removed[right] = true;
      int after = s.next[right];
      s.next[pos] = after;
      if (after != -1) {
        s.prev[after] = pos;
      }
      int before = s.prev[pos];
      if (before != -1) {
        long mb = merges.get(pair(s.sym[before], merged), NO_MERGE);
        if (mb != NO_MERGE) {
          s.heapPush((mb & 0xFFFFFFFF00000000L) | before);
        }
      }
      if (after != -1) {
        long ma = merges.get(pair(merged, s.sym[after]), NO_MERGE);
        if (ma != NO_MERGE) {
          s.heapPush((ma & 0xFFFFFFFF00000000L) | pos);
        }
      }
    }
  }

  /**
   * Working arrays for one encode call, reused across its words: symbols as a doubly linked list,
   * and a min-heap of candidate merges keyed by (rank << 32 | position).
   */
  static final class Scratch {
    int[] sym = new int[64];
    int[] prev = new int[64];
    int[] next = new int[64];
    boolean[] removed = new boolean[64];
    int count;
    long[] heap = new long[64];
    int heapSize;

    void reset(int capacity) {
      if (sym.length < capacity) {
        int c = Math.max(capacity, sym.length * 2);
        sym = new int[c];
        prev = new int[c];
        next = new int[c];
        removed = new boolean[c];
      }
      count = 0;
      heapSize = 0;
    }

    void push(int id) {
      if (count == sym.length) {
        int c = count * 2;
        sym = Arrays.copyOf(sym, c);
        prev = Arrays.copyOf(prev, c);
        next = Arrays.copyOf(next, c);
        removed = Arrays.copyOf(removed, c);
      }
      sym[count] = id;
      prev[count] = count - 1;
      next[count] = -1;
      removed[count] = false;
      if (count > 0) {
        next[count - 1] = count;
      }
      count++;
    }

    void heapPush(long v) {
      if (heapSize == heap.length) {
        heap = Arrays.copyOf(heap, heapSize * 2);
      }
      int i = heapSize++;
      while (i > 0) {
        int parent = (i - 1) >>> 1;
        if (heap[parent] <= v) {
          break;
        }
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = v;
    }

    long heapPop() {
      long top = heap[0];
      long last = heap[--heapSize];
      int i = 0;
      int half = heapSize >>> 1;
      while (i < half) {
        int child = 2 * i + 1;
        if (child + 1 < heapSize && heap[child + 1] < heap[child]) {
          child++;
        }
        if (last <= heap[child]) {
          break;
        }
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
      return top;
    }
  }
}
