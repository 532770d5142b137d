package dev.selma.engine.tokenizer;

import dev.selma.engine.model.ModelFormatException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the two loaders (tokenizer.json, GGUF) read, before it is checked for consistency and turned
 * into a {@link Tokenizer}. Errors name the file and the item.
 */
final class TokenizerSpec {
  final Path file;
  Tokenizer.Kind kind;
  /** The BPE model's vocabulary (not the added tokens). */
  Map<String, Integer> vocab;
  /** Merges in rank order, as pairs of token spellings. */
  List<String[]> merges = new ArrayList<>();
  /** Token scores for SentencePiece's score-based merging (GGUF without merges); null otherwise. */
  float[] scores;
  boolean ignoreMerges;
  boolean byteFallback;
  boolean fuseUnk;
  String unkToken;
  List<AddedTokens.Token> added = new ArrayList<>();
  Normalization normalization = Normalization.NONE;
  SplitScanner splitter;
  Metaspace metaspace;
  /** Post-processor, as token spellings: before and after the text when special tokens are added. */
  List<String> prefix = new ArrayList<>();
  List<String> suffix = new ArrayList<>();
  Decoding decoding;
  String bosToken;
  String eosToken;
  int[] extraEosIds = new int[0];
  String padToken;
  String chatTemplate;
  /** GGUF: the number of ids, which may exceed the tokens in use (trailing unused ids). */
  int size;

  TokenizerSpec(Path file) {
    this.file = file;
  }

  ModelFormatException error(String item, String problem) {
    return new ModelFormatException(file, item, problem);
  }

  Tokenizer build() throws ModelFormatException {
    int size = this.size;
    for (int id : vocab.values()) {
      if (id < 0) {
        throw error("model.vocab", "negative token id " + id);
      }
      size = Math.max(size, id + 1);
    }
    for (AddedTokens.Token t : added) {
      size = Math.max(size, t.id() + 1);
    }
    String[] tokens = new String[size];
    vocab.forEach((t, id) -> tokens[id] = t);
    Map<String, Integer> ids = new HashMap<>(vocab);
    boolean[] special = new boolean[size];
    for (AddedTokens.Token t : added) {
      if (t.id() < 0) {
        throw error("added_tokens", "negative id " + t.id() + " for " + t.content());
      }
      tokens[t.id()] = t.content();
      ids.put(t.content(), t.id());
      special[t.id()] = t.special();
    }

    int[] left = new int[merges.size()];
    int[] right = new int[merges.size()];
    for (int rank = 0; rank < merges.size(); rank++) {
      String[] m = merges.get(rank);
      Integer a = vocab.get(m[0]);
      Integer b = vocab.get(m[1]);
      for (String part : new String[] {m[0], m[1], m[0] + m[1]}) {
        if (!vocab.containsKey(part)) {
          throw error("merges", "merge " + rank + " (\"" + m[0] + "\" + \"" + m[1] + "\") refers to \""
              + part + "\", which is not in the vocabulary");
        }
      }
      left[rank] = a;
      right[rank] = b;
    }
    int unkId = -1;
    if (unkToken != null) {
      Integer u = ids.get(unkToken);
      if (u == null) {
        throw error("unk_token", "unknown token " + unkToken + " is not in the vocabulary");
      }
      unkId = u;
    }
    boolean byteLevel = kind == Tokenizer.Kind.BYTE_LEVEL_BPE;
    WordModel model = scores != null
        ? new ScoreModel(vocab, scores, byteFallback, unkId)
        : new BpeModel(byteLevel, vocab, left, right, ignoreMerges, byteFallback, fuseUnk, unkId);
    if (byteLevel) {
      for (int b = 0; b < 256; b++) {
        if (model.byteId(b) < 0) {
          throw error("model.vocab", String.format(
              "byte-level vocabulary has no token for byte 0x%02X (\"%s\") and no unknown token", b, ByteLevel.charOf(b)));
        }
      }
    }
    for (String name : new String[] {bosToken, eosToken, padToken}) {
      if (name != null && !ids.containsKey(name)) {
        throw error("special tokens", "token " + name + " is not in the vocabulary");
      }
    }
    return new Tokenizer(new Tokenizer.Parts(kind, file.toString(), tokens, ids, special, model, normalization,
        splitter, metaspace, new AddedTokens(added, normalization), lookup(prefix, ids), lookup(suffix, ids), decoding, bosToken, eosToken,
        extraEosIds, unkToken, padToken, chatTemplate));
  }

  private int[] lookup(List<String> names, Map<String, Integer> ids) throws ModelFormatException {
    int[] out = new int[names.size()];
    for (int i = 0; i < out.length; i++) {
      Integer id = ids.get(names.get(i));
      if (id == null) {
        throw error("post_processor", "special token " + names.get(i) + " is not in the vocabulary");
      }
      out[i] = id;
    }
    return out;
  }
}
