package dev.selma.engine.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The real vocabularies the build fetches (tools/fetch-vocabularies.sh, run by Maven before the
 * tests), loaded once per test JVM both by Selma and by Hugging Face's own tokenizer through DJL.
 * A missing vocabulary is an error, never a skip.
 */
final class Vocabularies {
  /** Every vocabulary the tests cover, by its folder name under the cache. */
  static final List<String> ALL = List.of("llama3", "llama3_1", "llama2", "mistral", "qwen3");

  private static final Map<String, Tokenizer> SELMA = new ConcurrentHashMap<>();
  private static final Map<String, Reference> HF = new ConcurrentHashMap<>();

  private Vocabularies() {}

  static Path dir(String name) {
    String root = System.getProperty("selma.vocab.dir");
    if (root == null) {
      throw new IllegalStateException("system property selma.vocab.dir is not set; run the tests through Maven,"
          + " which fetches the vocabularies (tools/fetch-vocabularies.sh) and sets it");
    }
    Path dir = Path.of(root, name);
    if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      throw new IllegalStateException("vocabulary " + name + " is missing: no " + dir.resolve("tokenizer.json")
          + "; run tools/fetch-vocabularies.sh " + root);
    }
    return dir;
  }

  static Tokenizer selma(String name) {
    return SELMA.computeIfAbsent(name, n -> {
      try {
        return Tokenizer.fromHuggingFace(dir(n));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  static Reference hf(String name) {
    return HF.computeIfAbsent(name, n -> new Reference(dir(n).resolve("tokenizer.json")));
  }

  /** Hugging Face's tokenizer (native, through DJL), without truncation or padding. */
  static final class Reference {
    private final HuggingFaceTokenizer tokenizer;

    Reference(Path tokenizerJson) {
      try {
        tokenizer = HuggingFaceTokenizer.builder()
            .optTokenizerPath(tokenizerJson)
            .optTruncation(false)
            .optPadding(false)
            .build();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    int[] encode(String text, boolean addSpecialTokens) {
      return Arrays.stream(tokenizer.encode(text, addSpecialTokens, false).getIds()).mapToInt(i -> (int) i).toArray();
    }

    String decode(int[] ids, boolean skipSpecialTokens) {
      return tokenizer.decode(Arrays.stream(ids).asLongStream().toArray(), skipSpecialTokens);
    }
  }
}
