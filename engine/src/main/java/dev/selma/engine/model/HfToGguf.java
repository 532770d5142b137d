package dev.selma.engine.model;

import dev.selma.engine.model.GgufMetadata.Value;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Converts a Hugging Face Llama, Mistral or Qwen2 model to a GGUF file that llama.cpp would also
 * produce and read ({@code convert_hf_to_gguf.py} conventions).
 *
 * <ul>
 *   <li>Architecture {@code llama} for Llama and Mistral, {@code qwen2} for Qwen2, with the
 *       hyper-parameter keys {@link ModelLoader#ggufConfig} reads.
 *   <li>llama only: the rows of q and k projections (and their biases) are permuted so that
 *       interleaved RoPE on the file equals rotate-half RoPE on the original: per head (k uses the
 *       key/value heads), rows viewed as {@code (2, headDim/2)} are transposed to {@code (headDim/2,
 *       2)}, i.e. output row {@code 2i + j} of a head is input row {@code j·headDim/2 + i}.
 *   <li>Matrices are stored in the requested type; vectors (norms, biases) stay F32.
 *   <li>RoPE scaling: linear and yarn as {@code {arch}.rope.scaling.*}; llama3 as a {@code
 *       rope_freqs.weight} F32 tensor of per-frequency divisors, computed in float32 as llama.cpp does
 *       (with {@code original_max_position_embeddings} taken from {@code rope_scaling}, where
 *       transformers reads it); dynamic NTK has no GGUF encoding and is refused.
 * </ul>
 */
public final class HfToGguf {
  private HfToGguf() {}

  /** GGUF {@code general.file_type} values (llama.cpp's {@code LlamaFileType}). */
  private static int fileType(GgmlType type) {
    return switch (type) {
      case F32 -> 0;
      case F16 -> 1;
      case Q4_0 -> 2;
      case Q8_0 -> 7;
      case Q4_K -> 14; // MOSTLY_Q4_K_S: every matrix Q4_K
      case Q6_K -> 18;
      case BF16 -> 32;
    };
  }

  /**
   * Writes {@code hf} (opened from a Hugging Face folder) to {@code out}, matrices as {@code type}.
   * {@code extraMetadata} (e.g. the tokenizer's {@code tokenizer.ggml.*} keys) is written after the
   * model's own keys and may override them.
   */
  public static void convert(ModelFiles hf, Path out, GgmlType type, Map<String, Value> extraMetadata)
      throws IOException {
    if (hf.format() != ModelFiles.Format.HF) {
      throw new IllegalArgumentException(hf.path() + " is not a Hugging Face model");
    }
    ModelConfig c = hf.config();
    LlamaWeights w = hf.weights();
    checkRowLengths(w, c, type);
    String arch = c.architecture().equals("qwen2") ? "qwen2" : "llama";
    boolean permute = arch.equals("llama");

    GgufWriter g = new GgufWriter();
    g.putString("general.architecture", arch);
    g.putString("general.name", String.valueOf(hf.path().toAbsolutePath().getFileName()));
    g.putUint32("general.file_type", fileType(type));
    g.putUint32("general.quantization_version", 2);
    g.putUint32(arch + ".vocab_size", c.vocabSize());
    g.putUint32(arch + ".context_length", c.maxPositionEmbeddings());
    g.putUint32(arch + ".embedding_length", c.hiddenSize());
    g.putUint32(arch + ".block_count", c.numLayers());
    g.putUint32(arch + ".feed_forward_length", c.intermediateSize());
    g.putUint32(arch + ".attention.head_count", c.numHeads());
    g.putUint32(arch + ".attention.head_count_kv", c.numKvHeads());
    g.putFloat32(arch + ".rope.freq_base", (float) c.ropeTheta());
    g.putFloat32(arch + ".attention.layer_norm_rms_epsilon", (float) c.rmsNormEps());
    g.putUint32(arch + ".attention.key_length", c.headDim());
    g.putUint32(arch + ".attention.value_length", c.headDim());
    g.putUint32(arch + ".rope.dimension_count", c.headDim());
    RopeScaling rs = c.ropeScaling();
    switch (rs.type()) {
      case NONE, LLAMA3 -> { }
      case LINEAR -> {
        g.putString(arch + ".rope.scaling.type", "linear");
        g.putFloat32(arch + ".rope.scaling.factor", (float) rs.factor());
      }
      case YARN -> {
        g.putString(arch + ".rope.scaling.type", "yarn");
        g.putFloat32(arch + ".rope.scaling.factor", (float) rs.factor());
        g.putUint32(arch + ".rope.scaling.original_context_length", rs.originalMaxPositionEmbeddings());
        if (rs.betaFast() != 32 || rs.betaSlow() != 1) {
          g.putFloat32(arch + ".rope.scaling.yarn_beta_fast", (float) rs.betaFast());
          g.putFloat32(arch + ".rope.scaling.yarn_beta_slow", (float) rs.betaSlow());
        }
      }
      case DYNAMIC -> throw new ModelFormatException(hf.path(), "rope_scaling",
          "dynamic NTK scaling has no GGUF encoding (llama.cpp does not support it)");
    }
    g.putAll(extraMetadata);

    if (rs.type() == RopeScaling.Type.LLAMA3) {
      g.addTensor("rope_freqs.weight", GgmlType.F32, new long[] {c.headDim() / 2}, llama3Factors(c));
    }
    matrix(g, "token_embd.weight", w.tokenEmbedding(), type, 0);
    vector(g, "output_norm.weight", w.outputNorm(), 0);
    if (!c.tieWordEmbeddings()) {
      matrix(g, "output.weight", w.output(), type, 0);
    }
    for (int i = 0; i < w.layers().size(); i++) {
      LlamaWeights.Layer l = w.layers().get(i);
      String p = "blk." + i + ".";
      int qHeads = permute ? c.numHeads() : 0;
      int kHeads = permute ? c.numKvHeads() : 0;
      vector(g, p + "attn_norm.weight", l.attnNorm(), 0);
      matrix(g, p + "attn_q.weight", l.wq(), type, qHeads);
      matrix(g, p + "attn_k.weight", l.wk(), type, kHeads);
      matrix(g, p + "attn_v.weight", l.wv(), type, 0);
      matrix(g, p + "attn_output.weight", l.wo(), type, 0);
      if (l.bq() != null) {
        vector(g, p + "attn_q.bias", l.bq(), qHeads);
        vector(g, p + "attn_k.bias", l.bk(), kHeads);
        vector(g, p + "attn_v.bias", l.bv(), 0);
      }
      vector(g, p + "ffn_norm.weight", l.ffnNorm(), 0);
      matrix(g, p + "ffn_gate.weight", l.wGate(), type, 0);
      matrix(g, p + "ffn_up.weight", l.wUp(), type, 0);
      matrix(g, p + "ffn_down.weight", l.wDown(), type, 0);
    }
    g.write(out);
  }

  /** Refuses a type whose blocks do not divide every matrix row, before anything is written. */
  private static void checkRowLengths(LlamaWeights w, ModelConfig c, GgmlType type) {
    List<Tensor> matrices = new ArrayList<>(List.of(w.tokenEmbedding(), w.output()));
    for (LlamaWeights.Layer l : w.layers()) {
      matrices.addAll(List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.wGate(), l.wUp(), l.wDown()));
    }
    for (Tensor t : matrices) {
      if (t.cols() % type.blockSize != 0) {
        throw new IllegalArgumentException("cannot store " + t.name() + " as " + type + ": its rows of " + t.cols()
            + " elements are not a multiple of the " + type + " block size " + type.blockSize
            + " (hidden " + c.hiddenSize() + ", intermediate " + c.intermediateSize() + ")");
      }
    }
  }

  /**
   * The source row of output row {@code row} under llama.cpp's q/k permutation with {@code heads}
   * heads (0: no permutation).
   */
  static long permutedSource(long row, long rows, int heads) {
    if (heads == 0) {
      return row;
    }
    long headDim = rows / heads;
    long head = row / headDim;
    long within = row % headDim;
    return head * headDim + (within % 2) * (headDim / 2) + within / 2;
  }

  private static void matrix(GgufWriter g, String name, Tensor t, GgmlType type, int permuteHeads) {
    long rows = t.rows();
    g.addTensor(name, type, t.shape(), row -> Quants.dequantizeRow(t, permutedSource(row, rows, permuteHeads)));
  }

  private static void vector(GgufWriter g, String name, Tensor t, int permuteHeads) {
    float[] v = Quants.dequantize(t);
    float[] out = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = v[(int) permutedSource(i, v.length, permuteHeads)];
    }
    g.addTensor(name, GgmlType.F32, t.shape(), out);
  }

  /** llama3 RoPE scaling as llama.cpp's converter computes it: one divisor per rotary frequency. */
  static float[] llama3Factors(ModelConfig c) {
    RopeScaling rs = c.ropeScaling();
    int dim = c.headDim();
    float factor = (float) rs.factor();
    double oldContext = rs.originalMaxPositionEmbeddings();
    double lowFreqWavelen = oldContext / rs.lowFreqFactor();
    double highFreqWavelen = oldContext / rs.highFreqFactor();
    float[] factors = new float[dim / 2];
    for (int i = 0; i < dim / 2; i++) {
      float freq = 1.0f / (float) Math.pow(c.ropeTheta(), (float) (2 * i) / dim);
      float wavelen = (float) (2 * Math.PI) / freq;
      if (wavelen < highFreqWavelen) {
        factors[i] = 1;
      } else if (wavelen > lowFreqWavelen) {
        factors[i] = factor;
      } else {
        float smooth = (float) ((oldContext / wavelen - rs.lowFreqFactor()) / (rs.highFreqFactor() - rs.lowFreqFactor()));
        factors[i] = 1 / ((1 - smooth) / factor + smooth);
      }
    }
    return factors;
  }
}
