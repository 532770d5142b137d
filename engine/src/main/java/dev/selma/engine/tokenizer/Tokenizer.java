package dev.selma.engine.tokenizer;

import dev.selma.engine.model.GgufMetadata;
import dev.selma.engine.model.ModelFormatException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.stream.IntStream;

/**
 * A Llama-family tokenizer that produces the same ids and text as Hugging Face's {@code tokenizers}:
 * byte-level BPE (Llama 3 / 3.1, Qwen2 / Qwen3) or SentencePiece-style BPE with byte fallback
 * (Llama 2, Mistral). Loaded from a {@code tokenizer.json} (+ {@code tokenizer_config.json}) or from
 * GGUF metadata; immutable and safe to share between threads.
 *
 * <p>Encoding follows HF's pipeline: added tokens are found in the text first (special or not, as HF
 * does), the text between them is normalized, pre-tokenized and run through BPE, and with
 * {@code addSpecialTokens} the post-processor's tokens (BOS for Llama 2, Mistral, Llama 3.1) are added.
 */
public final class Tokenizer {

  /** The two tokenizer families. */
  public enum Kind {
    /** GPT-2 style: BPE over UTF-8 bytes, text split by a regex first (Llama 3, Qwen). */
    BYTE_LEVEL_BPE,
    /** SentencePiece style: BPE over characters, "▁" for spaces, byte fallback (Llama 2, Mistral). */
    SENTENCEPIECE_BPE
  }

  /** Everything a tokenizer is made of; the loaders fill it in. */
  record Parts(
      Kind kind,
      String source,
      String[] tokens,
      Map<String, Integer> ids,
      boolean[] special,
      WordModel model,
      Normalization normalization,
      SplitScanner splitter,
      Metaspace metaspace,
      AddedTokens added,
      int[] prefix,
      int[] suffix,
      Decoding decoding,
      String bosToken,
      String eosToken,
      int[] extraEosIds,
      String unkToken,
      String padToken,
      String chatTemplate) {}

  private final Parts parts;
  private final OptionalInt bosId;
  private final int[] eosIds;

  Tokenizer(Parts parts) {
    this.parts = parts;
    this.bosId = parts.bosToken() == null ? OptionalInt.empty() : OptionalInt.of(parts.ids().get(parts.bosToken()));
    this.eosIds = IntStream.concat(
            parts.eosToken() == null ? IntStream.empty() : IntStream.of(parts.ids().get(parts.eosToken())),
            Arrays.stream(parts.extraEosIds()))
        .distinct().toArray();
  }

  /**
   * Loads a Hugging Face tokenizer: {@code path} is a {@code tokenizer.json} file or a folder holding
   * one; a {@code tokenizer_config.json} beside it supplies the BOS/EOS/pad token names and the chat
   * template.
   *
   * @throws ModelFormatException naming the file and the problem if a file is unreadable, malformed,
   *     or uses a model, normalizer, pre-tokenizer, post-processor or decoder Selma does not support
   */
  public static Tokenizer fromHuggingFace(Path path) throws ModelFormatException {
    return HuggingFaceLoader.load(path);
  }

  /**
   * Loads the tokenizer embedded in a GGUF file's metadata ({@code tokenizer.ggml.*}), model {@code gpt2}
   * (byte-level BPE, pre-tokenizer {@code llama-bpe}/{@code llama3} or {@code qwen2}) or {@code llama}
   * (SentencePiece; merge ranks if {@code tokenizer.ggml.merges} is present, otherwise token scores
   * as llama.cpp does).
   */
  public static Tokenizer fromGguf(GgufMetadata metadata) throws ModelFormatException {
    return GgufTokenizer.load(metadata);
  }

  /**
   * This tokenizer as GGUF metadata ({@code tokenizer.ggml.*} and {@code tokenizer.chat_template}),
   * following llama.cpp's {@code convert_hf_to_gguf.py}, for a model converter to embed.
   * {@link #fromGguf} of the result encodes and decodes exactly as this tokenizer does.
   *
   * @throws UnsupportedOperationException if GGUF cannot express this tokenizer (added-token options,
   *     a post-processor that adds more than BOS/EOS)
   */
  public Map<String, GgufMetadata.Value> toGgufMetadata() {
    return GgufTokenizer.metadata(this, vocabSize());
  }

  /**
   * As {@link #toGgufMetadata()}, for a model whose embedding has {@code vocabSize} rows, more than
   * the tokenizer's ids (Qwen: 151,936 rows for 151,669 ids): the extra ids are written as unused
   * {@code [PADn]} tokens, which decode to nothing.
   *
   * @throws UnsupportedOperationException if GGUF cannot express this tokenizer (added-token options,
   *     a post-processor that adds more than BOS/EOS)
   */
  public Map<String, GgufMetadata.Value> toGgufMetadata(int vocabSize) {
    return GgufTokenizer.metadata(this, vocabSize);
  }

  /**
   * Encodes text. {@code addSpecialTokens} is HF's {@code add_special_tokens}: apply the
   * post-processor (add BOS where the tokenizer does). Added tokens spelled in the text (such as
   * {@code <|im_start|>} or {@code </s>}) become their ids, as in HF.
   */
  public int[] encode(String text, boolean addSpecialTokens) {
    Objects.requireNonNull(text, "text");
    Encoder encoder = new Encoder(text.length());
    if (addSpecialTokens) {
      encoder.out.addAll(parts.prefix());
    }
    parts.added().splitRaw(text, encoder);
    if (addSpecialTokens) {
      encoder.out.addAll(parts.suffix());
    }
    return encoder.out.toArray();
  }

  /**
   * Decodes ids to text as HF's {@code decode} does; with {@code skipSpecialTokens} the special added
   * tokens (BOS, EOS, chat markers) are left out. Ids with no token are ignored, as in HF.
   */
  public String decode(int[] ids, boolean skipSpecialTokens) {
    StreamingDecoder decoder = streamingDecoder(skipSpecialTokens);
    StringBuilder text = new StringBuilder();
    for (int id : ids) {
      text.append(decoder.next(id));
    }
    return text.append(decoder.flush()).toString();
  }

  /** A decoder for ids that arrive one at a time (generation). */
  public StreamingDecoder streamingDecoder(boolean skipSpecialTokens) {
    return new StreamingDecoder(this, parts.decoding(), skipSpecialTokens);
  }

  /** The number of token ids (the largest id + 1). */
  public int vocabSize() {
    return parts.tokens().length;
  }

  /** The vocabulary spelling of a token (for byte-level vocabularies, "Ġ" stands for a space). */
  public String token(int id) {
    String t = tokenOrNull(id);
    if (t == null) {
      throw new IllegalArgumentException("no token has id " + id + " (vocabulary size " + vocabSize() + ")");
    }
    return t;
  }

  String tokenOrNull(int id) {
    return id >= 0 && id < parts.tokens().length ? parts.tokens()[id] : null;
  }

  /** The id of a token given by its vocabulary spelling (model or added token). */
  public OptionalInt tokenId(String token) {
    Integer id = parts.ids().get(token);
    return id == null ? OptionalInt.empty() : OptionalInt.of(id);
  }

  /** Whether an id is a special added token (skipped by {@code decode(ids, true)}). */
  public boolean isSpecial(int id) {
    return id >= 0 && id < parts.special().length && parts.special()[id];
  }

  public OptionalInt bosId() {
    return bosId;
  }

  /** The ids that end generation: the EOS token, and end-of-turn tokens a GGUF file names. */
  public int[] eosIds() {
    return eosIds.clone();
  }

  /** The BOS token's text, e.g. {@code <|begin_of_text|>}, for chat templates. */
  public Optional<String> bosToken() {
    return Optional.ofNullable(parts.bosToken());
  }

  /** The EOS token's text, e.g. {@code <|eot_id|>}, for chat templates. */
  public Optional<String> eosToken() {
    return Optional.ofNullable(parts.eosToken());
  }

  /** The chat template from tokenizer_config.json or GGUF, if there is one. */
  public Optional<String> chatTemplate() {
    return Optional.ofNullable(parts.chatTemplate());
  }

  public Kind kind() {
    return parts.kind();
  }

  /** A one-line description: family, size, pre-tokenizer, origin. */
  public String description() {
    return (parts.kind() == Kind.BYTE_LEVEL_BPE ? "byte-level BPE" : "SentencePiece BPE")
        + ", " + vocabSize() + " tokens"
        + (parts.splitter() != null ? ", " + parts.splitter().name().toLowerCase() + " pre-tokenizer" : "")
        + (parts.metaspace() != null ? ", metaspace pre-tokenizer" : "")
        + ", from " + parts.source();
  }

  @Override
  public String toString() {
    return "Tokenizer[" + description() + "]";
  }

  Parts parts() {
    return parts;
  }

  /** One encode call: the output, BPE's working arrays, and the steps after the added-token split. */
  private final class Encoder implements AddedTokens.Sink {
    final IntArray out;
    final BpeModel.Scratch scratch = new BpeModel.Scratch();
    /** Receives the pieces of normalized text split at {@code normalized: true} added tokens. */
    private final AddedTokens.Sink normalizedPieces = new AddedTokens.Sink() {
      @Override
      public void text(String text, int from, int to) {
        preTokenize(text, from, to, atStart && from == 0);
      }

      @Override
      public void token(int id) {
        out.add(id);
      }
    };

    Encoder(int chars) {
      out = new IntArray(chars / 3 + 8);
    }

    @Override
    public void token(int id) {
      out.add(id);
    }

    /** Whether the text being encoded starts the input (for Metaspace's {@code first}). */
    private boolean atStart;

    @Override
    public void text(String text, int from, int to) {
      atStart = from == 0;
      if (parts.normalization().isEmpty() && !parts.added().hasNormalized()) {
        preTokenize(text, from, to, atStart);
        return;
      }
      String normalized = parts.normalization().apply(text.substring(from, to));
      if (parts.added().hasNormalized()) {
        parts.added().splitNormalized(normalized, normalizedPieces);
      } else {
        preTokenize(normalized, 0, normalized.length(), atStart);
      }
    }

    private void preTokenize(String text, int from, int to, boolean startsInput) {
      WordModel model = parts.model();
      SplitScanner splitter = parts.splitter();
      Metaspace metaspace = parts.metaspace();
      if (metaspace != null) {
        text = metaspace.apply(text.substring(from, to), startsInput);
        from = 0;
        to = text.length();
      }
      if (metaspace != null && metaspace.split()) {
        // Every "▁" starts a word (HF: split on the replacement, merged with the next piece).
        int start = from;
        for (int i = from + 1; i < to; i++) {
          if (text.charAt(i) == Metaspace.REPLACEMENT) {
            model.encodeWord(text.substring(start, i), out, scratch);
            start = i;
          }
        }
        if (start < to) {
          model.encodeWord(text.substring(start, to), out, scratch);
        }
      } else if (splitter != null) {
        for (int i = from; i < to; ) {
          int end = splitter.next(text, i, to);
          model.encodeWord(text.substring(i, end), out, scratch);
          i = end;
        }
      } else if (model.splitsAtSpaces()) {
        int start = from;
        for (int i = from + 1; i < to; i++) {
          if (text.charAt(i) == '\u2581' && text.charAt(i - 1) != '\u2581') {
            model.encodeWord(text.substring(start, i), out, scratch);
            start = i;
          }
        }
        if (start < to) {
          model.encodeWord(text.substring(start, to), out, scratch);
        }
      } else if (from < to) {
        model.encodeWord(text.substring(from, to), out, scratch);
      }
    }
  }
}
