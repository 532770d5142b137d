package dev.selma.engine.tokenizer;

import dev.selma.engine.model.GgufMetadata;
import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import dev.selma.engine.model.ModelFormatException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Tokenizers in GGUF metadata ({@code tokenizer.ggml.*}), read and written with llama.cpp's
 * conventions: one token list for the model vocabulary and the added tokens, with a type per token
 * (control tokens are the special added tokens, user-defined ones the other added tokens), and the
 * pre-tokenizer named by {@code tokenizer.ggml.pre} instead of spelled out.
 */
final class GgufTokenizer {
  static final String MODEL = "tokenizer.ggml.model";
  static final String PRE = "tokenizer.ggml.pre";
  static final String TOKENS = "tokenizer.ggml.tokens";
  static final String TOKEN_TYPE = "tokenizer.ggml.token_type";
  static final String SCORES = "tokenizer.ggml.scores";
  static final String MERGES = "tokenizer.ggml.merges";
  static final String BOS = "tokenizer.ggml.bos_token_id";
  static final String EOS = "tokenizer.ggml.eos_token_id";
  static final String EOT = "tokenizer.ggml.eot_token_id";
  static final String EOM = "tokenizer.ggml.eom_token_id";
  static final String UNK = "tokenizer.ggml.unknown_token_id";
  static final String PAD = "tokenizer.ggml.padding_token_id";
  static final String ADD_BOS = "tokenizer.ggml.add_bos_token";
  static final String ADD_EOS = "tokenizer.ggml.add_eos_token";
  static final String ADD_SPACE_PREFIX = "tokenizer.ggml.add_space_prefix";
  static final String CHAT_TEMPLATE = "tokenizer.chat_template";

  /** llama.cpp's token types. */
  static final int NORMAL = 1;
  static final int UNKNOWN = 2;
  static final int CONTROL = 3;
  static final int USER_DEFINED = 4;
  static final int UNUSED = 5;
  static final int BYTE = 6;

  private GgufTokenizer() {}

  static Tokenizer load(GgufMetadata md) throws ModelFormatException {
    TokenizerSpec spec = new TokenizerSpec(md.file());
    String model = md.getString(MODEL);
    String[] tokens = md.getStringArray(TOKENS);
    int[] types = md.contains(TOKEN_TYPE) ? md.getIntArray(TOKEN_TYPE) : null;
    if (types != null && types.length != tokens.length) {
      throw spec.error(TOKEN_TYPE, types.length + " types for " + tokens.length + " tokens");
    }
    Map<String, Integer> vocab = new HashMap<>(tokens.length * 2);
    spec.size = tokens.length;
    for (int id = 0; id < tokens.length; id++) {
      int type = types == null ? NORMAL : types[id];
      if (type == UNUSED) {
        continue; // padding ids ("[PAD151700]"): no token, as for ids beyond a tokenizer.json vocabulary
      }
      vocab.putIfAbsent(tokens[id], id);
      // As llama.cpp: control, unknown and user-defined tokens are matched in text; the first two are
      // special (left out by decode when skipping special tokens).
      if (type == CONTROL || type == UNKNOWN || type == USER_DEFINED) {
        spec.added.add(new AddedTokens.Token(id, tokens[id], type != USER_DEFINED, false, false, false, false));
      }
    }
    spec.vocab = vocab;
    boolean addBosDefault;
    switch (model) {
      case "gpt2" -> {
        spec.kind = Tokenizer.Kind.BYTE_LEVEL_BPE;
        String pre = md.getString(PRE);
        switch (pre) {
          case "llama-bpe", "llama3", "llama-v3" -> {
            spec.splitter = SplitScanner.LLAMA3;
            spec.ignoreMerges = true; // as llama.cpp does for this pre-tokenizer, and HF's Llama 3 files
          }
          case "qwen2" -> {
            spec.splitter = SplitScanner.QWEN2;
            spec.normalization = new Normalization(List.of(new Normalization.Nfc()));
          }
          default -> throw spec.error(PRE, "unsupported pre-tokenizer " + pre + " (Selma supports llama-bpe and qwen2)");
        }
        readMerges(md, spec, true);
        spec.decoding = Decoding.BYTE_LEVEL;
        addBosDefault = false;
      }
      case "llama" -> {
        spec.kind = Tokenizer.Kind.SENTENCEPIECE_BPE;
        boolean spacePrefix = md.getBoolean(ADD_SPACE_PREFIX, true);
        List<Normalization.Step> steps = new ArrayList<>();
        if (spacePrefix) {
          steps.add(new Normalization.Prepend("\u2581"));
        }
        steps.add(new Normalization.Replace(" ", "\u2581"));
        spec.normalization = new Normalization(List.copyOf(steps));
        spec.byteFallback = true;
        spec.fuseUnk = true;
        if (md.contains(MERGES)) {
          readMerges(md, spec, false);
        } else {
          spec.scores = md.getFloatArray(SCORES);
          if (spec.scores.length != tokens.length) {
            throw spec.error(SCORES, spec.scores.length + " scores for " + tokens.length + " tokens");
          }
        }
        spec.decoding = new Decoding(false, List.of(new Decoding.Replacement("\u2581", " ")), true, spacePrefix ? 1 : 0);
        addBosDefault = true;
      }
      default -> throw spec.error(MODEL, "unsupported tokenizer model " + model + " (Selma supports gpt2 and llama)");
    }
    spec.bosToken = tokenAt(md, spec, tokens, BOS);
    spec.eosToken = tokenAt(md, spec, tokens, EOS);
    spec.unkToken = tokenAt(md, spec, tokens, UNK);
    spec.padToken = tokenAt(md, spec, tokens, PAD);
    List<Integer> extraEos = new ArrayList<>();
    for (String key : new String[] {EOT, EOM}) {
      if (md.contains(key)) {
        extraEos.add(vocab.get(tokenAt(md, spec, tokens, key)));
      }
    }
    spec.extraEosIds = extraEos.stream().mapToInt(Integer::intValue).toArray();
    if (md.getBoolean(ADD_BOS, addBosDefault)) {
      if (spec.bosToken == null) {
        throw spec.error(ADD_BOS, "true, but there is no " + BOS);
      }
      spec.prefix.add(spec.bosToken);
    }
    if (md.getBoolean(ADD_EOS, false)) {
      if (spec.eosToken == null) {
        throw spec.error(ADD_EOS, "true, but there is no " + EOS);
      }
      spec.suffix.add(spec.eosToken);
    }
    spec.chatTemplate = md.getString(CHAT_TEMPLATE, null);
    return spec.build();
  }

  private static void readMerges(GgufMetadata md, TokenizerSpec spec, boolean required) throws ModelFormatException {
    if (!required && !md.contains(MERGES)) {
      return;
    }
    String[] merges = md.getStringArray(MERGES);
    for (int i = 0; i < merges.length; i++) {
      // As llama.cpp: the separating space is looked for from the second character on.
      int space = merges[i].indexOf(' ', 1);
      if (space < 0) {
        throw spec.error(MERGES, "merge " + i + " is \"" + merges[i] + "\", expected \"a b\"");
      }
      spec.merges.add(new String[] {merges[i].substring(0, space), merges[i].substring(space + 1)});
    }
  }

  private static String tokenAt(GgufMetadata md, TokenizerSpec spec, String[] tokens, String key)
      throws ModelFormatException {
    if (!md.contains(key)) {
      return null;
    }
    int id = md.getInt(key);
    if (id < 0 || id >= tokens.length) {
      throw spec.error(key, "token id " + id + " is outside the vocabulary (" + tokens.length + " tokens)");
    }
    return tokens[id];
  }

  /** See {@link Tokenizer#toGgufMetadata(int)}. */
  static Map<String, Value> metadata(Tokenizer tokenizer, int vocabSize) {
    if (vocabSize < tokenizer.vocabSize()) {
      throw new IllegalArgumentException("vocabulary size " + vocabSize + " is below the tokenizer's "
          + tokenizer.vocabSize());
    }
    Tokenizer.Parts p = tokenizer.parts();
    if (!(p.model() instanceof BpeModel bpe)) {
      throw new UnsupportedOperationException("only tokenizers with BPE merges can be written to GGUF");
    }
    if (p.metaspace() != null) {
      throw new UnsupportedOperationException("GGUF cannot express the Metaspace pre-tokenizer (llama.cpp's"
          + " add_space_prefix is the legacy Prepend normalizer, which differs after special tokens)");
    }
    for (AddedTokens.Token t : p.added().tokens) {
      if (t.lstrip() || t.rstrip() || t.singleWord() || t.normalized()) {
        throw new UnsupportedOperationException("GGUF cannot express the options of added token " + t);
      }
    }
    boolean byteLevel = p.kind() == Tokenizer.Kind.BYTE_LEVEL_BPE;
    Map<String, Value> md = new LinkedHashMap<>();
    md.put(MODEL, string(byteLevel ? "gpt2" : "llama"));
    if (byteLevel) {
      boolean llama3 = p.splitter() == SplitScanner.LLAMA3;
      boolean nfc = p.normalization().steps().equals(List.of(new Normalization.Nfc()));
      // The pre-tokenizer name implies the normalizer and ignore_merges; refuse what it cannot say.
      if (llama3 ? !(p.normalization().isEmpty() && bpe.ignoreMerges) : !(nfc && !bpe.ignoreMerges)) {
        throw new UnsupportedOperationException("GGUF pre-tokenizer " + (llama3 ? "llama-bpe" : "qwen2")
            + " implies " + (llama3 ? "no normalizer and ignore_merges" : "NFC and no ignore_merges"));
      }
      md.put(PRE, string(llama3 ? "llama-bpe" : "qwen2"));
    } else {
      md.put(PRE, string("default"));
    }

    int n = vocabSize;
    String[] tokens = new String[n];
    long[] types = new long[n];
    int unkId = p.unkToken() == null ? -1 : p.ids().get(p.unkToken());
    Map<Integer, AddedTokens.Token> added = new HashMap<>();
    p.added().tokens.forEach(t -> added.put(t.id(), t));
    for (int id = 0; id < n; id++) {
      String t = tokenizer.tokenOrNull(id);
      // As convert_hf_to_gguf.py: ids without a token (the model's padding rows) are unused "[PADn]".
      tokens[id] = t == null ? "[PAD" + id + "]" : t;
      AddedTokens.Token a = added.get(id);
      types[id] = t == null ? UNUSED
          : id == unkId ? UNKNOWN
          : a != null ? (a.special() ? CONTROL : USER_DEFINED)
          : !byteLevel && Decoding.fallbackByte(t) >= 0 ? BYTE
          : NORMAL;
    }
    md.put(TOKENS, new Value(ValueType.ARRAY, ValueType.STRING, tokens));
    md.put(TOKEN_TYPE, new Value(ValueType.ARRAY, ValueType.INT32, types));
    if (!byteLevel) {
      // llama.cpp merges SentencePiece vocabularies without merges by score: rank the merged tokens
      // so that its score order follows the merge order; other tokens score 0.
      double[] scores = new double[n];
      for (int rank = bpe.mergeLeft.length - 1; rank >= 0; rank--) {
        scores[bpe.mergedId(rank)] = -(rank + 1);
      }
      md.put(SCORES, new Value(ValueType.ARRAY, ValueType.FLOAT32, scores));
      md.put(ADD_SPACE_PREFIX, bool(p.normalization().prependsSpace()));
    }
    String[] merges = new String[bpe.mergeLeft.length];
    for (int rank = 0; rank < merges.length; rank++) {
      merges[rank] = tokens[bpe.mergeLeft[rank]] + " " + tokens[bpe.mergeRight[rank]];
    }
    md.put(MERGES, new Value(ValueType.ARRAY, ValueType.STRING, merges));
    tokenizer.bosId().ifPresent(id -> md.put(BOS, uint32(id)));
    if (p.eosToken() != null) {
      md.put(EOS, uint32(p.ids().get(p.eosToken())));
    }
    if (unkId >= 0) {
      md.put(UNK, uint32(unkId));
    }
    if (p.padToken() != null) {
      md.put(PAD, uint32(p.ids().get(p.padToken())));
    }
    md.put(ADD_BOS, bool(addsOnly(p.prefix(), tokenizer.bosId().orElse(-1), "before")));
    md.put(ADD_EOS, bool(addsOnly(p.suffix(), p.eosToken() == null ? -1 : p.ids().get(p.eosToken()), "after")));
    if (p.chatTemplate() != null) {
      md.put(CHAT_TEMPLATE, string(p.chatTemplate()));
    }
    return md;
  }

  /** Whether the post-processor adds {@code id} (true) or nothing (false); GGUF cannot say more. */
  private static boolean addsOnly(int[] added, int id, String where) {
    if (added.length == 0) {
      return false;
    }
    if (added.length == 1 && added[0] == id) {
      return true;
    }
    throw new UnsupportedOperationException("GGUF cannot express the post-processor's tokens " + where
        + " the text: " + Arrays.toString(added));
  }

  private static Value string(String s) {
    return new Value(ValueType.STRING, ValueType.STRING, s);
  }

  private static Value uint32(int v) {
    return new Value(ValueType.UINT32, ValueType.UINT32, (long) v);
  }

  private static Value bool(boolean b) {
    return new Value(ValueType.BOOL, ValueType.BOOL, b);
  }
}
