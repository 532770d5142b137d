package dev.selma.engine.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.selma.engine.backend.cpu.CpuBackend;
import dev.selma.engine.generate.GenerationRequest;
import dev.selma.engine.generate.Generator;
import dev.selma.engine.generate.Sampler;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.HfToGguf;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.Tensor;
import dev.selma.engine.model.ModelFiles;
import dev.selma.engine.model.ModelLoader;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.RopeScaling;
import dev.selma.engine.model.Safetensors;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The acceptance test of the forward pass: Selma's logits and greedy continuations against
 * Hugging Face {@code transformers} on small random-weight models ({@code tools/make_hf_fixtures.py}
 * wrote the models and the float64 reference outputs under {@code fixtures/hf/}).
 */
class HuggingFaceParityTest {
  static final Path FIXTURES = Path.of("src/test/resources/fixtures/hf");
  private static final CpuBackend BACKEND = new CpuBackend(2);

  @TempDir static Path temp;

  @AfterAll
  static void close() {
    BACKEND.close();
  }

  static Stream<String> models() throws IOException {
    try (Stream<Path> dirs = Files.list(FIXTURES)) {
      List<String> names = dirs.filter(d -> Files.exists(d.resolve("reference.json")))
          .map(d -> d.getFileName().toString()).sorted().toList();
      assertTrue(names.size() >= 7, "expected the Hugging Face fixture models, found " + names);
      return names.stream();
    }
  }

  /** The reference prompts, greedy continuations and logits of one fixture model. */
  record Reference(int[][] prompts, int[][] greedy, float[][][] logits) {
    static Reference read(Path dir) throws IOException {
      JsonNode json = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
      int[][] prompts = ids(json.get("prompts")), greedy = ids(json.get("greedy"));
      float[][][] logits = new float[prompts.length][][];
      try (Safetensors st = Safetensors.open(dir.resolve("logits.safetensors"))) {
        for (int i = 0; i < prompts.length; i++) {
          var t = st.tensor("logits." + i);
          float[] flat = Quants.dequantize(t);
          int vocab = (int) t.cols();
          logits[i] = new float[prompts[i].length][];
          for (int p = 0; p < prompts[i].length; p++) {
            logits[i][p] = Arrays.copyOfRange(flat, p * vocab, (p + 1) * vocab);
          }
        }
      }
      return new Reference(prompts, greedy, logits);
    }

    private static int[][] ids(JsonNode lists) {
      int[][] out = new int[lists.size()][];
      for (int i = 0; i < out.length; i++) {
        JsonNode l = lists.get(i);
        out[i] = new int[l.size()];
        for (int j = 0; j < out[i].length; j++) {
          out[i][j] = l.get(j).asInt();
        }
      }
      return out;
    }
  }

  /** max |Δ| over all positions, relative to max |reference logit|. */
  private static double relativeError(float[][] expected, float[][] actual) {
    double maxDiff = 0, maxRef = 0;
    for (int p = 0; p < expected.length; p++) {
      for (int v = 0; v < expected[p].length; v++) {
        maxDiff = Math.max(maxDiff, Math.abs(expected[p][v] - actual[p][v]));
        maxRef = Math.max(maxRef, Math.abs(expected[p][v]));
      }
    }
    return maxDiff / maxRef;
  }

  /** All logits of a prompt run as one chunk, as transformers' single forward call does. */
  private static float[][] logits(Llama model, int[] prompt) {
    try (Sequence s = model.newSequence(prompt.length + 64, prompt.length)) {
      return s.appendAllLogits(prompt);
    }
  }

  /**
   * Greedy continuation. Dynamic NTK changes RoPE with the length, so the reference recomputed the
   * whole sequence at every step (transformers caches rotated keys and would mix frequencies); so
   * does this test for that model. Every other model decodes with the KV cache.
   */
  private static int[] greedy(Llama model, int[] prompt, int n) {
    if (model.config().ropeScaling().type() != RopeScaling.Type.DYNAMIC) {
      try (Sequence s = model.newSequence(prompt.length + n + 1, 16)) {
        return Generator.generate(s, GenerationRequest.builder(prompt).maxNewTokens(n).build(), null).tokens();
      }
    }
    int[] seq = prompt.clone();
    for (int i = 0; i < n; i++) {
      try (Sequence s = model.newSequence(seq.length + 1, seq.length)) {
        seq = Arrays.copyOf(seq, seq.length + 1);
        seq[seq.length - 1] = Sampler.argmax(s.append(Arrays.copyOf(seq, seq.length - 1)));
      }
    }
    return Arrays.copyOfRange(seq, prompt.length, seq.length);
  }

  @ParameterizedTest
  @MethodSource("models")
  void fp32LogitsAndGreedyContinuationsMatchTransformers(String name) throws IOException {
    Path dir = FIXTURES.resolve(name);
    Reference ref = Reference.read(dir);
    try (ModelFiles files = ModelLoader.open(dir)) {
      Llama model = new Llama(files.config(), files.weights(), BACKEND);
      for (int i = 0; i < ref.prompts.length; i++) {
        double err = relativeError(ref.logits[i], logits(model, ref.prompts[i]));
        assertTrue(err <= 1e-4, name + " prompt " + i + ": max|Δ| = " + err + "·max|logit|");
        assertArrayEquals(ref.greedy[i], greedy(model, ref.prompts[i], ref.greedy[i].length),
            name + " prompt " + i + " greedy continuation");
      }
    }
  }

  /**
   * The same models written to GGUF (llama.cpp conventions: permuted q/k rows with interleaved RoPE,
   * llama3 scaling as frequency factors) and read back.
   *
   * <p>Against transformers, relative to max|logit|: F32 is the same arithmetic (1e-4); F16 rounds
   * each weight by ≤ 2^-11 relative (1e-2). The fixtures are deliberately high-gain random models (so
   * that greedy paths have clear margins), and they amplify weight rounding: Q8_0's ≤ 1/254 of a
   * block's largest |w| moves their logits by 3–15 % of the largest (bound 0.2), Q4_0's ≤ 1/16 by up
   * to 85 %, which bounds nothing, so Q4_0 is not compared with transformers. What every quantized
   * file must do exactly is compute what its stored numbers say: it is compared with the same model
   * whose weights are those numbers dequantized to F32 (1e-4), which checks the quantized kernels.
   */
  @ParameterizedTest
  @MethodSource("ggufCases")
  void ggufConversionsStayWithinTheirTypesTolerance(String name, GgmlType type, double tolerance) throws IOException {
    Path dir = FIXTURES.resolve(name);
    Reference ref = Reference.read(dir);
    Path gguf = temp.resolve(name + "-" + type + ".gguf");
    try (ModelFiles hf = ModelLoader.open(dir)) {
      HfToGguf.convert(hf, gguf, type, Map.of());
    }
    try (ModelFiles files = ModelLoader.open(gguf)) {
      Llama model = new Llama(files.config(), files.weights(), BACKEND);
      Llama twin = new Llama(files.config(), dequantized(files.weights()), BACKEND);
      for (int i = 0; i < ref.prompts.length; i++) {
        float[][] got = logits(model, ref.prompts[i]);
        double exact = relativeError(logits(twin, ref.prompts[i]), got);
        assertTrue(exact <= 1e-4, name + " " + type + " prompt " + i + " vs its F32 twin: max|Δ| = " + exact);
        if (!Double.isNaN(tolerance)) {
          double err = relativeError(ref.logits[i], got);
          assertTrue(err <= tolerance, name + " " + type + " prompt " + i + ": max|Δ| = " + err + "·max|logit|");
        }
      }
    }
  }

  /** The same weights with every quantized tensor replaced by its dequantized F32 values. */
  private static LlamaWeights dequantized(LlamaWeights w) {
    java.util.function.UnaryOperator<Tensor> f = t -> {
      if (t == null || t.type() == GgmlType.F32) {
        return t;
      }
      float[] v = Quants.dequantize(t);
      MemorySegment s = Arena.ofAuto().allocate(4L * v.length, 4);
      MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT, 0, v.length);
      return new Tensor(t.name(), GgmlType.F32, t.shape(), s);
    };
    List<LlamaWeights.Layer> layers = w.layers().stream().map(l -> new LlamaWeights.Layer(f.apply(l.attnNorm()),
        f.apply(l.wq()), f.apply(l.wk()), f.apply(l.wv()), f.apply(l.wo()), f.apply(l.bq()), f.apply(l.bk()),
        f.apply(l.bv()), f.apply(l.ffnNorm()), f.apply(l.wGate()), f.apply(l.wUp()), f.apply(l.wDown()))).toList();
    Tensor embedding = f.apply(w.tokenEmbedding());
    Tensor output = w.output() == w.tokenEmbedding() ? embedding : f.apply(w.output());
    return new LlamaWeights(embedding, layers, f.apply(w.outputNorm()), output, w.ropeFreqFactors());
  }

  static Stream<Arguments> ggufCases() throws IOException {
    List<String> names = models().filter(n -> !n.equals("llama_dynamic")).toList(); // GGUF has no dynamic NTK
    return names.stream().flatMap(n -> Stream.of(Arguments.of(n, GgmlType.F32, 1e-4), Arguments.of(n, GgmlType.F16, 1e-2),
        Arguments.of(n, GgmlType.Q8_0, 0.2), Arguments.of(n, GgmlType.Q4_0, Double.NaN)));
  }
}
