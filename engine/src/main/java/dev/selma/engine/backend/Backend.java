package dev.selma.engine.backend;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionPlan;
import dev.selma.engine.attention.AttentionPlanner;
import dev.selma.engine.attention.AttentionStats;
import dev.selma.engine.attention.Rope;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.Tensor;

/**
 * The operations a transformer forward pass needs, on some device. The forward pass ({@code
 * dev.selma.engine.llama.Llama}) is written once against this interface and never learns whether a
 * CPU or a GPU runs it.
 *
 * <p>Activations are row-major float matrices ({@link Activations}): one row per token of the chunk
 * being processed. Weights are matrices {@code [outFeatures, inFeatures]} in their file's element type
 * ({@link Weight}). Operations run in call order; {@link #read} waits for all earlier ones.
 */
public interface Backend extends AutoCloseable {

  /** A short name for logs: "cpu (16 threads)", "cuda (NVIDIA H100)". */
  String name();

  /** Makes a tensor available to this backend: a view of mapped memory on the CPU, a copy on a GPU. */
  Weight load(Tensor tensor);

  /** A new matrix of {@code rows × cols} floats, contents undefined. */
  Activations allocate(int rows, int cols);

  /**
   * Gives the memory of a matrix from {@link #allocate} back now rather than when the garbage
   * collector finds it unreachable (GPU memory is scarcer than the heap's view of it suggests); the
   * matrix and its views must not be used afterwards. Freeing twice does nothing.
   */
  void free(Activations matrix);

  /** A KV cache for one sequence of this model, keys stored before RoPE. */
  KvCache newKvCache(ModelConfig config, int maxTokens);

  /** {@code out[t] = table[tokens[t]]}, dequantized. */
  void embed(Activations out, Weight table, int[] tokens);

  /** {@code out[0] = table[token]} of one token, which may be one {@link #greedy} chose and the host has not read. */
  default void embed(Activations out, Weight table, Token token) {
    embed(out, table, new int[] {token.id()});
  }

  /** {@code out[t] = x[t] / rms(x[t]) · weight}, with rms over the row, fp32 accumulation. */
  void rmsNorm(Activations out, Activations x, Weight weight, float eps);

  /** {@code out[t] = W · x[t]} for every row t of x; uses the first {@code x.rows()} rows of out. */
  void matmul(Activations out, Activations x, Weight w);

  /**
   * The attention's three projections of one input: {@code q = Wq·x}, {@code k = Wk·x}, {@code v =
   * Wv·x}. A backend may do them in one pass (a GPU decoding one token launches one kernel).
   */
  default void matmulQkv(Activations q, Activations k, Activations v, Activations x, Weight wq, Weight wk, Weight wv) {
    matmul(q, x, wq);
    matmul(k, x, wk);
    matmul(v, x, wv);
  }

  /**
   * {@code x[t] += W · in[t]}: a projection added to the residual stream, with {@code scratch} (as
   * large as x) for a backend that computes the product apart. A GPU adds it as it writes it.
   */
  default void matmulAdd(Activations x, Activations in, Weight w, Activations scratch) {
    matmul(scratch, in, w);
    add(x, scratch);
  }

  /** {@code x[t] += bias} for every row t. */
  void addBias(Activations x, Weight bias);

  /** {@code x += delta}. */
  void add(Activations x, Activations delta);

  /** {@code gate = silu(gate) · up}, the SwiGLU activation. */
  void swiglu(Activations gate, Activations up);

  /**
   * The MLP's first half: {@code gate[t] = silu(wGate · x[t]) · (wUp · x[t])}, with {@code up} as
   * scratch. A backend may do it in one pass over both weights (a GPU decoding one token does).
   */
  default void matmulSwiglu(Activations gate, Activations up, Activations x, Weight wGate, Weight wUp) {
    matmul(gate, x, wGate);
    matmul(up, x, wUp);
    swiglu(gate, up);
  }

  /**
   * A layer's MLP block, added to the residual stream: {@code x[t] += W_down · (silu(W_gate · n[t]) ⊙
   * (W_up · n[t]))} with {@code n = rmsNorm(x, norm)}. {@code normed} (as large as x), {@code gate} and
   * {@code up} (as large as the products) are scratch whose contents afterwards are unspecified, so that a
   * backend may keep the block's intermediates in the precision its products read (a GPU's prefill keeps
   * them in bf16).
   */
  default void mlp(Activations x, Weight norm, float eps, Weight wGate, Weight wUp, Weight wDown,
      Activations normed, Activations gate, Activations up) {
    rmsNorm(normed, x, norm, eps);
    matmulSwiglu(gate, up, normed, wGate, wUp);
    matmulAdd(x, gate, wDown, normed);
  }

  /**
   * Appends the keys (before RoPE) and values of the chunk's tokens to layer {@code layer} of the
   * cache, at the cache's current length, and adds the keys and the queries (before RoPE) to the
   * cache's per-block sums that select-and-merge scores blocks with. The cache's length advances once
   * all layers are stored ({@link KvCache#advance}).
   */
  void storeKv(KvCache cache, int layer, Activations q, Activations k, Activations v);

  /**
   * Causal attention of the chunk's queries (before RoPE) over layer {@code layer} of the cache: query
   * t is token {@code cache.length() + t}. The backend builds the layer's {@link AttentionPlan} from
   * {@code config} ({@link AttentionPlanner}, with block scores from the cache's sums), records its
   * choices in {@code stats} and runs it, rotating queries and keys with {@code rope} to the plan's
   * positions.
   */
  void attention(Activations out, Activations q, KvCache cache, int layer, Rope rope, AttentionConfig config,
      AttentionStats stats);

  /**
   * Runs {@code step}: the operations of one decode step (one token of the sequence that {@code cache}
   * holds, through the model under {@code attention}, and its logits). A backend may record them the
   * first time and replay the record later, updated, where the step never waits for the device (a GPU's
   * CUDA graph); the results are those of running them one by one.
   */
  default void decodeStep(KvCache cache, AttentionConfig attention, Runnable step) {
    step.run();
  }

  /** Copies row {@code row} of {@code x} to {@code dst}, waiting for earlier operations. */
  void read(Activations x, int row, float[] dst);

  /**
   * The {@code k} largest values of row {@code row} of {@code x} and its softmax denominator ({@link
   * TopLogits}), waiting for earlier operations. A GPU computes them where the row is ({@code k ≤
   * TopLogits.MAX_K}) and copies back 8k bytes instead of the row.
   */
  default TopLogits top(Activations x, int row, int k, float inverseTemperature) {
    float[] values = new float[x.cols()];
    read(x, row, values);
    return TopLogits.of(values, k, inverseTemperature);
  }

  /**
   * The greedy choice of row {@code row} of {@code x}: {@code top(x, row, 1, 0)}'s token. A backend that
   * {@linkplain #choosesAhead chooses ahead} leaves it where it was made and brings its id to the host
   * without waiting; the others choose at once.
   */
  default Token greedy(Activations x, int row) {
    return Token.of(top(x, row, 1, 0).ids()[0]);
  }

  /**
   * Whether {@link #greedy} leaves its choice on this backend, for the next decode step's {@link
   * #embed(Activations, Weight, Token)}: then a greedy generation queues the step for a token before the
   * host reads it, so that the host's work between steps overlaps the backend's (a GPU).
   */
  default boolean choosesAhead() {
    return false;
  }

  @Override
  void close();
}
