package dev.selma.engine.kv;

import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * The model part of every page key: a SHA-256 over the model's configuration and, for every tensor,
 * its name, type, shape and {@value #SAMPLES} samples of {@value #SAMPLE_BYTES} bytes spread over its
 * data. Hashing whole weight files (gigabytes) at every start would cost seconds; samples tell apart
 * any two real models (a fine-tune changes every matrix throughout), and page files stay valid across
 * restarts because the fingerprint depends only on the weights, not on paths or times.
 */
public final class ModelFingerprint {
  static final int SAMPLES = 16, SAMPLE_BYTES = 64;

  private ModelFingerprint() {}

  /** 64 hex digits. */
  public static String of(ModelConfig config, LlamaWeights weights) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform provides SHA-256", e);
    }
    sha.update(config.toString().getBytes(StandardCharsets.UTF_8));
    for (Tensor t : tensors(weights)) {
      sha.update((t.name() + "|" + t.type() + "|" + Arrays.toString(t.shape())).getBytes(StandardCharsets.UTF_8));
      MemorySegment data = t.data();
      long size = data.byteSize(), n = Math.min(size, SAMPLE_BYTES);
      for (int s = 0; s < SAMPLES; s++) {
        long at = (size - n) * s / (SAMPLES - 1);
        sha.update(data.asSlice(at, n).toArray(ValueLayout.JAVA_BYTE));
      }
    }
    return HexFormat.of().formatHex(sha.digest());
  }

  private static List<Tensor> tensors(LlamaWeights w) {
    List<Tensor> all = new ArrayList<>(Arrays.asList(w.tokenEmbedding(), w.outputNorm(), w.output(),
        w.ropeFreqFactors()));
    for (LlamaWeights.Layer l : w.layers()) {
      all.addAll(Arrays.asList(l.attnNorm(), l.wq(), l.wk(), l.wv(), l.wo(), l.bq(), l.bk(), l.bv(), l.ffnNorm(),
          l.wGate(), l.wUp(), l.wDown()));
    }
    all.removeIf(t -> t == null);
    return all;
  }
}
