package dev.selma.engine.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.selma.engine.model.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a Hugging Face {@code tokenizer.json} (and the {@code tokenizer_config.json} beside it). Only
 * the components Llama-family tokenizers use are accepted; anything else is an error that names the
 * file, the section and the unsupported type, rather than a tokenizer that silently differs from HF.
 */
final class HuggingFaceLoader {
  private static final ObjectMapper JSON = new ObjectMapper();

  private HuggingFaceLoader() {}

  static Tokenizer load(Path path) throws ModelFormatException {
    Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
    TokenizerSpec spec = new TokenizerSpec(file);
    JsonNode root = read(file);
    if (!root.isObject()) {
      throw spec.error(null, "expected a JSON object at the top level");
    }
    readModel(spec, section(spec, root, "model", true));
    readAddedTokens(spec, root.path("added_tokens"));
    readNormalizer(spec, section(spec, root, "normalizer", false));
    readPreTokenizer(spec, section(spec, root, "pre_tokenizer", false));
    readPostProcessor(spec, section(spec, root, "post_processor", false), "post_processor");
    readDecoder(spec, section(spec, root, "decoder", true));

    Path configFile = file.resolveSibling("tokenizer_config.json");
    if (Files.exists(configFile)) {
      readConfig(spec, configFile);
    }
    return spec.build();
  }

  private static JsonNode read(Path file) throws ModelFormatException {
    try {
      return JSON.readTree(Files.readAllBytes(file));
    } catch (JsonProcessingException e) {
      var where = e.getLocation();
      throw new ModelFormatException(file, null, "malformed JSON: " + e.getOriginalMessage()
          + (where == null ? "" : " (line " + where.getLineNr() + ", column " + where.getColumnNr() + ")"), e);
    } catch (IOException e) {
      throw new ModelFormatException(file, null, "cannot read: " + e, e);
    }
  }

  /** An object-valued section; null if absent or JSON null and not required. */
  private static JsonNode section(TokenizerSpec spec, JsonNode parent, String name, boolean required)
      throws ModelFormatException {
    JsonNode n = parent.get(name);
    if (n == null || n.isNull()) {
      if (required) {
        throw spec.error(name, "missing section");
      }
      return null;
    }
    if (!n.isObject()) {
      throw spec.error(name, "expected an object but found " + n.getNodeType());
    }
    return n;
  }

  private static String type(TokenizerSpec spec, JsonNode node, String item) throws ModelFormatException {
    JsonNode t = node.get("type");
    if (t == null || !t.isTextual()) {
      throw spec.error(item, "missing \"type\"");
    }
    return t.asText();
  }

  private static String text(TokenizerSpec spec, JsonNode node, String field, String item)
      throws ModelFormatException {
    JsonNode t = node.get(field);
    if (t == null || !t.isTextual()) {
      throw spec.error(item, "missing string \"" + field + "\"");
    }
    return t.asText();
  }

  private static void readModel(TokenizerSpec spec, JsonNode model) throws ModelFormatException {
    String type = type(spec, model, "model");
    if (!type.equals("BPE")) {
      throw spec.error("model.type", "unsupported model type " + type + " (Selma supports BPE)");
    }
    if (model.hasNonNull("dropout") && model.get("dropout").asDouble() != 0) {
      throw spec.error("model.dropout", "BPE dropout is not supported");
    }
    for (String affix : new String[] {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.hasNonNull(affix) && !model.get(affix).asText().isEmpty()) {
        throw spec.error("model." + affix, "not supported: " + model.get(affix));
      }
    }
    JsonNode vocab = model.get("vocab");
    if (vocab == null || !vocab.isObject()) {
      throw spec.error("model.vocab", vocab == null ? "missing vocabulary" : "expected an object of token → id");
    }
    Map<String, Integer> ids = new HashMap<>(vocab.size() * 2);
    for (var it = vocab.fields(); it.hasNext(); ) {
      var e = it.next();
      if (!e.getValue().canConvertToInt()) {
        throw spec.error("model.vocab", "token " + e.getKey() + " has id " + e.getValue() + ", not an integer");
      }
      ids.put(e.getKey(), e.getValue().intValue());
    }
    spec.vocab = ids;

    JsonNode merges = model.get("merges");
    if (merges == null || !merges.isArray()) {
      throw spec.error("model.merges", merges == null ? "missing merges" : "expected an array");
    }
    for (int i = 0; i < merges.size(); i++) {
      JsonNode m = merges.get(i);
      String[] pair;
      if (m.isTextual()) {
        // The older shape "a b"; tokens cannot contain a space in it.
        pair = m.asText().split(" ", -1);
      } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
        pair = new String[] {m.get(0).asText(), m.get(1).asText()};
      } else {
        pair = null;
      }
      if (pair == null || pair.length != 2) {
        throw spec.error("model.merges", "merge " + i + " is " + m + ", expected \"a b\" or [\"a\", \"b\"]");
      }
      spec.merges.add(pair);
    }
    spec.ignoreMerges = model.path("ignore_merges").asBoolean(false);
    spec.byteFallback = model.path("byte_fallback").asBoolean(false);
    spec.fuseUnk = model.path("fuse_unk").asBoolean(false);
    spec.unkToken = model.hasNonNull("unk_token") ? model.get("unk_token").asText() : null;
  }

  private static void readAddedTokens(TokenizerSpec spec, JsonNode added) throws ModelFormatException {
    if (added.isMissingNode() || added.isNull()) {
      return;
    }
    if (!added.isArray()) {
      throw spec.error("added_tokens", "expected an array");
    }
    // HF does not take the ids in the file: it adds the tokens in order, giving each the model's id if
    // the model has the token, else the next id after the model's vocabulary and the tokens added so far.
    Map<String, Integer> addedIds = new HashMap<>();
    int maxAdded = -1;
    for (JsonNode t : added) {
      if (!t.path("id").canConvertToInt() || !t.path("content").isTextual()) {
        throw spec.error("added_tokens", "entry without integer \"id\" and string \"content\": " + t);
      }
      String content = t.get("content").asText();
      if (content.isEmpty() || addedIds.containsKey(content)) {
        continue;
      }
      Integer id = spec.vocab.get(content);
      if (id == null) {
        id = maxAdded >= spec.vocab.size() || spec.vocab.isEmpty() ? maxAdded + 1 : spec.vocab.size();
      }
      addedIds.put(content, id);
      maxAdded = Math.max(maxAdded, id);
      spec.added.add(new AddedTokens.Token(id, content,
          t.path("special").asBoolean(false), t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false),
          t.path("single_word").asBoolean(false), t.path("normalized").asBoolean(false)));
    }
  }

  private static void readNormalizer(TokenizerSpec spec, JsonNode normalizer) throws ModelFormatException {
    if (normalizer == null) {
      return;
    }
    List<Normalization.Step> steps = new ArrayList<>();
    collectNormalizers(spec, normalizer, steps);
    spec.normalization = new Normalization(List.copyOf(steps));
  }

  private static void collectNormalizers(TokenizerSpec spec, JsonNode n, List<Normalization.Step> steps)
      throws ModelFormatException {
    String type = type(spec, n, "normalizer");
    switch (type) {
      case "Sequence" -> {
        for (JsonNode child : n.path("normalizers")) {
          collectNormalizers(spec, child, steps);
        }
      }
      case "NFC" -> steps.add(new Normalization.Nfc());
      case "Prepend" -> steps.add(new Normalization.Prepend(text(spec, n, "prepend", "normalizer")));
      case "Replace" -> steps.add(new Normalization.Replace(stringPattern(spec, n, "normalizer"),
          text(spec, n, "content", "normalizer")));
      default -> throw spec.error("normalizer", "unsupported normalizer type " + type);
    }
  }

  /** A Replace pattern, which must be a plain string (a regex pattern is not supported). */
  private static String stringPattern(TokenizerSpec spec, JsonNode n, String item) throws ModelFormatException {
    JsonNode p = n.path("pattern");
    if (!p.path("String").isTextual()) {
      throw spec.error(item, "unsupported Replace pattern " + p + " (only {\"String\": ...})");
    }
    return p.get("String").asText();
  }

  private static void readPreTokenizer(TokenizerSpec spec, JsonNode pre) throws ModelFormatException {
    spec.kind = Tokenizer.Kind.SENTENCEPIECE_BPE;
    if (pre == null) {
      return;
    }
    List<JsonNode> steps = new ArrayList<>();
    if (type(spec, pre, "pre_tokenizer").equals("Sequence")) {
      pre.path("pretokenizers").forEach(steps::add);
    } else {
      steps.add(pre);
    }
    for (JsonNode step : steps) {
      String type = type(spec, step, "pre_tokenizer");
      switch (type) {
        case "Split" -> {
          String regex = step.path("pattern").path("Regex").asText(null);
          SplitScanner scanner = regex == null ? null : SplitScanner.forRegex(regex);
          if (scanner == null || spec.splitter != null) {
            throw spec.error("pre_tokenizer", "unsupported Split pattern " + step.path("pattern")
                + " (Selma knows the Llama 3 and Qwen2 patterns)");
          }
          if (!step.path("behavior").asText().equals("Isolated") || step.path("invert").asBoolean(false)) {
            throw spec.error("pre_tokenizer", "unsupported Split behavior " + step.path("behavior")
                + (step.path("invert").asBoolean(false) ? " (inverted)" : ""));
          }
          spec.splitter = scanner;
        }
        case "ByteLevel" -> {
          if (step.path("add_prefix_space").asBoolean(false) || step.path("use_regex").asBoolean(true)) {
            throw spec.error("pre_tokenizer", "unsupported ByteLevel options (add_prefix_space must be false and"
                + " use_regex false, with a Split before it): " + step);
          }
          spec.kind = Tokenizer.Kind.BYTE_LEVEL_BPE;
        }
        case "Metaspace" -> {
          if (!step.path("replacement").asText().equals("\u2581") || spec.metaspace != null) {
            throw spec.error("pre_tokenizer", "unsupported Metaspace " + step + " (only replacement \"\u2581\")");
          }
          spec.metaspace = new Metaspace(prependScheme(spec, step, "pre_tokenizer"), step.path("split").asBoolean(true));
        }
        default -> throw spec.error("pre_tokenizer", "unsupported pre-tokenizer type " + type);
      }
    }
    if (spec.metaspace != null && (spec.splitter != null || spec.kind == Tokenizer.Kind.BYTE_LEVEL_BPE)) {
      throw spec.error("pre_tokenizer", "Metaspace combined with other pre-tokenizers is not supported");
    }
    if (spec.kind == Tokenizer.Kind.BYTE_LEVEL_BPE && spec.splitter == null) {
      throw spec.error("pre_tokenizer", "ByteLevel without a Split pre-tokenizer is not supported");
    }
  }

  /** Metaspace's prepend_scheme, or the older add_prefix_space flag. */
  private static Metaspace.Prepend prependScheme(TokenizerSpec spec, JsonNode step, String item)
      throws ModelFormatException {
    if (!step.has("prepend_scheme")) {
      return step.path("add_prefix_space").asBoolean(true) ? Metaspace.Prepend.ALWAYS : Metaspace.Prepend.NEVER;
    }
    return switch (step.get("prepend_scheme").asText()) {
      case "always" -> Metaspace.Prepend.ALWAYS;
      case "first" -> Metaspace.Prepend.FIRST;
      case "never" -> Metaspace.Prepend.NEVER;
      default -> throw spec.error(item, "unsupported Metaspace prepend_scheme " + step.get("prepend_scheme"));
    };
  }

  private static void readPostProcessor(TokenizerSpec spec, JsonNode post, String item)
      throws ModelFormatException {
    if (post == null) {
      return;
    }
    String type = type(spec, post, item);
    switch (type) {
      case "Sequence" -> {
        for (JsonNode child : post.path("processors")) {
          readPostProcessor(spec, child, item);
        }
      }
      case "ByteLevel" -> { } // only adjusts offsets, which Selma does not report
      case "TemplateProcessing" -> {
        JsonNode single = post.get("single");
        if (single == null || !single.isArray()) {
          throw spec.error(item, "TemplateProcessing without a \"single\" template");
        }
        boolean seenSequence = false;
        for (JsonNode piece : single) {
          if (piece.has("Sequence")) {
            seenSequence = true;
          } else if (piece.path("SpecialToken").path("id").isTextual()) {
            String name = piece.get("SpecialToken").get("id").asText();
            JsonNode tokens = post.path("special_tokens").path(name).path("tokens");
            if (!tokens.isArray() || tokens.isEmpty()) {
              throw spec.error(item, "special token " + name + " is not listed in special_tokens");
            }
            for (JsonNode t : tokens) {
              (seenSequence ? spec.suffix : spec.prefix).add(t.asText());
            }
          } else {
            throw spec.error(item, "unsupported template piece " + piece);
          }
        }
      }
      default -> throw spec.error(item, "unsupported post-processor type " + type);
    }
  }

  private static void readDecoder(TokenizerSpec spec, JsonNode decoder) throws ModelFormatException {
    String type = type(spec, decoder, "decoder");
    if (type.equals("ByteLevel")) {
      if (spec.kind != Tokenizer.Kind.BYTE_LEVEL_BPE) {
        throw spec.error("decoder", "ByteLevel decoder without a ByteLevel pre-tokenizer");
      }
      spec.decoding = Decoding.BYTE_LEVEL;
      return;
    }
    if (spec.kind == Tokenizer.Kind.BYTE_LEVEL_BPE || !(type.equals("Sequence") || type.equals("Metaspace"))) {
      throw spec.error("decoder", "unsupported decoder " + decoder);
    }
    List<JsonNode> steps = new ArrayList<>();
    if (type.equals("Sequence")) {
      decoder.path("decoders").forEach(steps::add);
    } else {
      steps.add(decoder);
    }
    // Accepted: (Replace | Metaspace)* ByteFallback? Fuse? Strip(" ", n, 0)? — in this order, which is
    // what makes decoding text one piece at a time equivalent to HF's list-of-tokens chain.
    List<Decoding.Replacement> replacements = new ArrayList<>();
    boolean byteFallback = false;
    boolean fused = false;
    int strip = 0;
    int stage = 0;
    for (JsonNode step : steps) {
      String t = type(spec, step, "decoder");
      int order = switch (t) {
        case "Replace", "Metaspace" -> 0;
        case "ByteFallback" -> 1;
        case "Fuse" -> 2;
        case "Strip" -> 3;
        default -> throw spec.error("decoder", "unsupported decoder type " + t);
      };
      if (order < stage || (order == stage && order > 0)) {
        throw spec.error("decoder", "unsupported decoder order: " + t + " after " + decoder.path("decoders"));
      }
      stage = order;
      switch (t) {
        case "Replace" -> replacements.add(new Decoding.Replacement(stringPattern(spec, step, "decoder"),
            text(spec, step, "content", "decoder")));
        case "Metaspace" -> {
          if (!step.path("replacement").asText().equals("\u2581")) {
            throw spec.error("decoder", "unsupported Metaspace " + step + " (only replacement \"\u2581\")");
          }
          boolean prepends = prependScheme(spec, step, "decoder") != Metaspace.Prepend.NEVER;
          replacements.add(new Decoding.Replacement("\u2581", " ", prepends ? "" : " "));
        }
        case "ByteFallback" -> byteFallback = true;
        case "Fuse" -> fused = true;
        default -> {
          if (!fused || !step.path("content").asText().equals(" ") || step.path("stop").asInt(0) != 0) {
            throw spec.error("decoder", "unsupported Strip " + step + " (only leading spaces after Fuse)");
          }
          strip = step.path("start").asInt(0);
        }
      }
    }
    spec.decoding = new Decoding(false, List.copyOf(replacements), byteFallback, strip);
  }

  private static void readConfig(TokenizerSpec spec, Path configFile) throws ModelFormatException {
    JsonNode config = read(configFile);
    TokenizerSpec configSpec = new TokenizerSpec(configFile);
    if (!config.isObject()) {
      throw configSpec.error(null, "expected a JSON object at the top level");
    }
    spec.bosToken = tokenName(configSpec, config, "bos_token");
    spec.eosToken = tokenName(configSpec, config, "eos_token");
    spec.padToken = tokenName(configSpec, config, "pad_token");
    JsonNode template = config.get("chat_template");
    if (template != null && template.isTextual()) {
      spec.chatTemplate = template.asText();
    } else if (template != null && template.isArray()) {
      // Several named templates: the one called "default" is the chat template.
      for (JsonNode named : template) {
        if (named.path("name").asText().equals("default")) {
          spec.chatTemplate = named.path("template").asText(null);
        }
      }
    }
  }

  /** A special token named in tokenizer_config.json: a string, {"content": ...}, or null. */
  private static String tokenName(TokenizerSpec spec, JsonNode config, String key) throws ModelFormatException {
    JsonNode n = config.get(key);
    if (n == null || n.isNull()) {
      return null;
    }
    if (n.isTextual()) {
      return n.asText();
    }
    if (n.path("content").isTextual()) {
      return n.get("content").asText();
    }
    throw spec.error(key, "expected a token string or {\"content\": ...} but found " + n);
  }
}
