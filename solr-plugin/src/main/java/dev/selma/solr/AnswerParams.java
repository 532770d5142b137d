package dev.selma.solr;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.generate.SamplingParams;
import dev.selma.lucene.PackOrder;
import dev.selma.lucene.PackingOptions;
import dev.selma.lucene.Truncation;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import org.apache.solr.common.SolrException;
import org.apache.solr.common.SolrException.ErrorCode;
import org.apache.solr.common.params.CommonParams;
import org.apache.solr.common.params.SolrParams;
import org.apache.solr.schema.IndexSchema;
import org.apache.solr.schema.SchemaField;

/**
 * The {@code selma.*} parameters of an {@code /answer} request, validated: every problem is a 400 that
 * names the parameter and the value.
 */
public record AnswerParams(String question, String model, int budget, int maxNewTokens, PackingOptions packing,
    SamplingParams sampling, List<String> stop, String system, List<String> textFields, String titleField,
    String idField, long timeLimitMs, boolean debug, AttentionConfig attention, String cache) {

  public static final String P = "selma.";
  public static final String QUESTION = P + "question";
  public static final String MODEL = P + "model";
  public static final String BUDGET = P + "budget";
  public static final String MAX_NEW_TOKENS = P + "maxNewTokens";
  public static final String ORDER = P + "order";
  public static final String TRUNCATION = P + "truncation";
  public static final String MAX_DOC_TOKENS = P + "maxDocTokens";
  public static final String MIN_DOC_TOKENS = P + "minDocTokens";
  public static final String TEMPERATURE = P + "temperature";
  public static final String TOP_K = P + "topK";
  public static final String TOP_P = P + "topP";
  public static final String MIN_P = P + "minP";
  public static final String REPETITION_PENALTY = P + "repetitionPenalty";
  public static final String SEED = P + "seed";
  public static final String STOP = P + "stop";
  public static final String SYSTEM = P + "system";
  public static final String FIELDS = P + "fields";
  public static final String TITLE_FIELD = P + "titleField";
  public static final String ID_FIELD = P + "idField";
  public static final String TIME_LIMIT = P + "timeLimit";
  public static final String DEBUG = P + "debug";
  public static final String ATTENTION = P + "attention";
  public static final String POSITIONS = P + "positions";
  public static final String CACHE = P + "cache";
  public static final String BLOCK_SIZE = ATTENTION + ".blockSize";
  public static final String ATTENTION_TOP_K = ATTENTION + ".topK";
  public static final String MERGE = ATTENTION + ".merge";
  public static final String SINK_BLOCKS = ATTENTION + ".sinkBlocks";
  public static final String WINDOW_BLOCKS = ATTENTION + ".windowBlocks";
  public static final String NTK_SCALE = ATTENTION + ".ntkScale";
  public static final String SELECTION = ATTENTION + ".selection";
  public static final String GROUP_SIZE = POSITIONS + ".groupSize";
  public static final String WINDOW = POSITIONS + ".window";
  public static final String PERIOD = POSITIONS + ".period";
  public static final String CRD_SCALE = POSITIONS + ".ntkScale";

  public static final Set<String> ALL = Set.of(QUESTION, MODEL, BUDGET, MAX_NEW_TOKENS, ORDER, TRUNCATION,
      MAX_DOC_TOKENS, MIN_DOC_TOKENS, TEMPERATURE, TOP_K, TOP_P, MIN_P, REPETITION_PENALTY, SEED, STOP, SYSTEM, FIELDS,
      TITLE_FIELD, ID_FIELD, TIME_LIMIT, DEBUG, ATTENTION, POSITIONS, CACHE, BLOCK_SIZE, ATTENTION_TOP_K, MERGE,
      SINK_BLOCKS, WINDOW_BLOCKS, NTK_SCALE, SELECTION, GROUP_SIZE, WINDOW, PERIOD, CRD_SCALE);

  /** Values the engine runs today; the others are named in the 400 as not available yet. */
  static final List<String> ATTENTION_NOW = List.of("dense", "select-merge");
  static final List<String> POSITIONS_NOW = List.of("original", "reindexed", "self-extend", "crd-ntk");
  static final List<String> CACHE_NOW = List.of("prefix", "documents", "off");
  static final List<String> CACHE_LATER = List.of();

  /**
   * Reads and checks the parameters.
   *
   * @param models the node's models ({@code selma.model} must name one; without it, the only one)
   */
  public static AnswerParams parse(SolrParams params, IndexSchema schema, SelmaModels models) {
    for (Iterator<String> it = params.getParameterNamesIterator(); it.hasNext(); ) {
      String name = it.next();
      if (name.startsWith(P) && !ALL.contains(name)) {
        throw bad("unknown parameter '" + name + "'; Selma's parameters are " + new TreeSet<>(ALL));
      }
    }
    String question = params.get(QUESTION, params.get(CommonParams.Q));
    if (question == null || question.isBlank()) {
      throw bad("no question: give " + QUESTION + " (or q)");
    }
    String model = params.get(MODEL);
    if (model == null) {
      if (models.slots().size() != 1) {
        throw bad("no model: give " + MODEL + " (configured on this node: " + models.slots().keySet() + ")");
      }
      model = models.slots().keySet().iterator().next();
    } else if (models.slot(model) == null) {
      throw bad("unknown model '" + model + "' in " + MODEL + "; configured on this node: " + models.slots().keySet());
    }

    Truncation truncation = check(TRUNCATION, () -> Truncation.parse(params.get(TRUNCATION, "head")));
    PackOrder order = check(ORDER, () -> PackOrder.parse(params.get(ORDER, "score")));
    PackingOptions packing = new PackingOptions(integer(params, MAX_DOC_TOKENS, 0, 0), truncation, order,
        integer(params, MIN_DOC_TOKENS, 32, 1));
    SamplingParams s0 = SamplingParams.GREEDY;
    SamplingParams s1 = check(TEMPERATURE, () -> s0.withTemperature(decimal(params, TEMPERATURE, 0)));
    SamplingParams s2 = check(TOP_K, () -> s1.withTopK(integer(params, TOP_K, 0, Integer.MIN_VALUE)));
    SamplingParams s3 = check(TOP_P, () -> s2.withTopP(decimal(params, TOP_P, 1)));
    SamplingParams s4 = check(MIN_P, () -> s3.withMinP(decimal(params, MIN_P, 0)));
    SamplingParams s5 = check(REPETITION_PENALTY, () -> s4.withRepetitionPenalty(decimal(params, REPETITION_PENALTY, 1)));
    SamplingParams sampling = new SamplingParams(s5.temperature(), s5.topK(), s5.topP(), s5.minP(),
        s5.repetitionPenalty(), 0, 0, longValue(params, SEED, 0));

    List<String> textFields = new ArrayList<>();
    for (String f : params.get(FIELDS, "text").split("[,\\s]+")) {
      if (!f.isEmpty()) {
        textFields.add(storedField(schema, FIELDS, f));
      }
    }
    if (textFields.isEmpty()) {
      throw bad(FIELDS + " names no field");
    }
    String idField = params.get(ID_FIELD, schema.getUniqueKeyField() == null ? "id" : schema.getUniqueKeyField().getName());
    storedField(schema, ID_FIELD, idField);
    String titleField = params.get(TITLE_FIELD, "title");
    if (schema.getFieldOrNull(titleField) == null) {
      throw bad("unknown field '" + titleField + "' in " + TITLE_FIELD);
    }

    return new AnswerParams(question, model, integer(params, BUDGET, 0, 0), integer(params, MAX_NEW_TOKENS, 256, 1),
        packing, sampling, params.getParams(STOP) == null ? List.of() : Arrays.asList(params.getParams(STOP)),
        params.get(SYSTEM), List.copyOf(textFields), titleField, idField, integer(params, TIME_LIMIT, 0, 0),
        bool(params, DEBUG), attention(params), choice(params, CACHE, CACHE_NOW, CACHE_LATER, "cache mode"));
  }

  /**
   * The request's attention scheme and positions, or null when the request names neither: then the
   * engine's default applies (the model's profile: dense within its trained window).
   */
  private static AttentionConfig attention(SolrParams params) {
    if (params.get(ATTENTION) == null && params.get(POSITIONS) == null) {
      return null;
    }
    AttentionConfig d = AttentionConfig.dense();
    String scheme = choice(params, ATTENTION, ATTENTION_NOW, List.of(), "attention scheme");
    String positions = choice(params, POSITIONS, POSITIONS_NOW, List.of(), "position scheme");
    AttentionConfig.Positions p = switch (positions) {
      case "reindexed" -> new AttentionConfig.Reindexed();
      case "self-extend" -> new AttentionConfig.SelfExtend(integer(params, GROUP_SIZE, 8, 1),
          integer(params, WINDOW, 1024, 1));
      case "crd-ntk" -> new AttentionConfig.CrdNtk(integer(params, PERIOD, 16384, 1), decimal(params, CRD_SCALE, 1));
      default -> new AttentionConfig.Original();
    };
    try {
      return new AttentionConfig(scheme.equals("dense") ? AttentionConfig.Scheme.DENSE
          : AttentionConfig.Scheme.SELECT_AND_MERGE, integer(params, BLOCK_SIZE, d.blockSize(), 1),
          integer(params, ATTENTION_TOP_K, d.topK(), 1), integer(params, MERGE, d.merge(), 1),
          integer(params, SINK_BLOCKS, d.sinkBlocks(), 0), integer(params, WINDOW_BLOCKS, d.windowBlocks(), 0), p,
          decimal(params, NTK_SCALE, 1),
          AttentionConfig.Selection.named(
              choice(params, SELECTION, List.of("mean", "bound", "query"), List.of(), "block selection")));
    } catch (IllegalArgumentException e) {
      throw bad(ATTENTION + "/" + POSITIONS + ": " + e.getMessage());
    }
  }

  private static String storedField(IndexSchema schema, String param, String name) {
    SchemaField f = schema.getFieldOrNull(name);
    if (f == null) {
      throw bad("unknown field '" + name + "' in " + param);
    }
    if (!f.stored()) {
      throw bad("field '" + name + "' in " + param + " is not stored, so its text cannot be read");
    }
    return name;
  }

  private static String choice(SolrParams params, String name, List<String> now, List<String> later, String what) {
    String v = params.get(name, now.get(0)).trim().toLowerCase(Locale.ROOT);
    if (now.contains(v)) {
      return v;
    }
    if (later.contains(v)) {
      throw bad(name + "=" + v + ": this " + what + " is not available yet in this Selma build; available now: " + now);
    }
    throw bad("unknown " + what + " '" + v + "' in " + name + "; available now: " + now
        + (later.isEmpty() ? "" : ", planned: " + later));
  }

  private static int integer(SolrParams params, String name, int dflt, int min) {
    String v = params.get(name);
    if (v == null) {
      return dflt;
    }
    try {
      int i = Integer.parseInt(v.trim());
      if (i < min) {
        throw bad(name + " must be >= " + min + ", got " + i);
      }
      return i;
    } catch (NumberFormatException e) {
      throw bad(name + " must be an integer, got '" + v + "'");
    }
  }

  private static long longValue(SolrParams params, String name, long dflt) {
    String v = params.get(name);
    try {
      return v == null ? dflt : Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      throw bad(name + " must be an integer, got '" + v + "'");
    }
  }

  private static double decimal(SolrParams params, String name, double dflt) {
    String v = params.get(name);
    try {
      return v == null ? dflt : Double.parseDouble(v.trim());
    } catch (NumberFormatException e) {
      throw bad(name + " must be a number, got '" + v + "'");
    }
  }

  private static boolean bool(SolrParams params, String name) {
    String v = params.get(name, "false").trim();
    if (v.equalsIgnoreCase("true") || v.equals("on")) {
      return true;
    }
    if (v.equalsIgnoreCase("false") || v.equals("off")) {
      return false;
    }
    throw bad(name + " must be true or false, got '" + v + "'");
  }

  private static <T> T check(String param, java.util.function.Supplier<T> parse) {
    try {
      return parse.get();
    } catch (SolrException e) {
      throw e;
    } catch (IllegalArgumentException e) {
      throw bad(param + ": " + e.getMessage());
    }
  }

  static SolrException bad(String message) {
    return new SolrException(ErrorCode.BAD_REQUEST, "Selma: " + message);
  }
}
