package dev.selma.engine.llama;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.Rope;
import dev.selma.engine.backend.Activations;
import dev.selma.engine.backend.Backend;
import dev.selma.engine.backend.Token;
import dev.selma.engine.backend.Weight;
import dev.selma.engine.model.LlamaWeights;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.RopeScaling;
import dev.selma.engine.model.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The Llama-family forward pass (Llama 2/3, Mistral, Qwen2): token embedding, then per block
 * RMSNorm → q/k/v projections (+ biases) → attention with RoPE → output projection → residual, RMSNorm
 * → SwiGLU MLP → residual; a final RMSNorm and the output projection give logits.
 *
 * <p>Written once against {@link Backend}; keys enter the cache before RoPE. Thread-safe: any number
 * of {@link Sequence}s may run at once, each on one thread.
 */
public final class Llama {
  private final ModelConfig config;
  private final Backend backend;
  private final Weight embedding, outputNorm, output;
  private final List<Block> blocks;
  private final float[] ropeFreqFactors;
  /** RoPE does not depend on the sequence length unless the scaling is dynamic. */
  private final Rope fixedRope;
  private volatile Rope scaledRope;

  private record Block(Weight attnNorm, Weight wq, Weight wk, Weight wv, Weight wo, Weight bq, Weight bk,
      Weight bv, Weight ffnNorm, Weight wGate, Weight wUp, Weight wDown) {}

  public Llama(ModelConfig config, LlamaWeights weights, Backend backend) {
    this.config = config;
    this.backend = backend;
    this.embedding = backend.load(weights.tokenEmbedding());
    this.outputNorm = backend.load(weights.outputNorm());
    this.output = weights.output() == weights.tokenEmbedding() ? embedding : backend.load(weights.output());
    List<Block> list = new ArrayList<>();
    for (LlamaWeights.Layer l : weights.layers()) {
      list.add(new Block(backend.load(l.attnNorm()), backend.load(l.wq()), backend.load(l.wk()),
          backend.load(l.wv()), backend.load(l.wo()), loadOptional(l.bq()), loadOptional(l.bk()),
          loadOptional(l.bv()), backend.load(l.ffnNorm()), backend.load(l.wGate()), backend.load(l.wUp()),
          backend.load(l.wDown())));
    }
    this.blocks = List.copyOf(list);
    this.ropeFreqFactors = weights.ropeFreqFactors() == null ? null : Quants.dequantize(weights.ropeFreqFactors());
    this.fixedRope = config.ropeScaling().type() == RopeScaling.Type.DYNAMIC
        ? null
        : Rope.of(config, ropeFreqFactors, config.maxPositionEmbeddings());
  }

  private Weight loadOptional(Tensor t) {
    return t == null ? null : backend.load(t);
  }

  public ModelConfig config() {
    return config;
  }

  public Backend backend() {
    return backend;
  }

  /**
   * A new sequence that can hold {@code maxTokens} tokens and processes at most {@code maxChunk}
   * tokens per step (activation memory grows with the chunk, not with the prompt).
   */
  public Sequence newSequence(int maxTokens, int maxChunk) {
    return new Sequence(this, backend.newKvCache(config, maxTokens), maxChunk);
  }

  /** The rotary embedding for {@code seqLen} tokens, its base changed by the attention's NTK factor. */
  Rope rope(int seqLen, AttentionConfig attention) {
    double base = config.ropeTheta() * attention.ropeBaseFactor(config.headDim());
    if (fixedRope == null) {
      return ropeWithBase(base, seqLen); // dynamic scaling: the frequencies follow the length
    }
    if (base == fixedRope.base()) {
      return fixedRope;
    }
    // A request's NTK scale holds for all its chunks: keep the last scaled Rope rather than rebuild it.
    Rope last = scaledRope;
    if (last == null || last.base() != base) {
      scaledRope = last = ropeWithBase(base, seqLen);
    }
    return last;
  }

  private Rope ropeWithBase(double base, int seqLen) {
    return Rope.of(config.headDim(), config.ropeStyle(), base, config.ropeScaling(), config.maxPositionEmbeddings(),
        ropeFreqFactors, seqLen);
  }

  /**
   * Runs one chunk through every layer under {@code attention}, appending its keys and values to the
   * sequence, and leaves the final hidden states of the chunk in {@code ws.x}.
   */
  void forwardChunk(Sequence seq, int[] tokens, AttentionConfig attention) {
    backend.embed(seq.workspace.x.rows(0, tokens.length), embedding, tokens);
    forwardLayers(seq, tokens.length, attention);
  }

  /** {@link #forwardChunk} of one token that the backend chose and the host may not have read yet. */
  void forwardChosen(Sequence seq, Token token, AttentionConfig attention) {
    backend.embed(seq.workspace.x.rows(0, 1), embedding, token);
    forwardLayers(seq, 1, attention);
  }

  /** The layers of a chunk of {@code n} tokens whose embeddings are in {@code ws.x}. */
  private void forwardLayers(Sequence seq, int n, AttentionConfig attention) {
    Workspace ws = seq.workspace;
    Activations x = ws.x.rows(0, n), xb = ws.xb.rows(0, n), q = ws.q.rows(0, n), k = ws.k.rows(0, n),
        v = ws.v.rows(0, n), att = ws.att.rows(0, n), gate = ws.gate.rows(0, n), up = ws.up.rows(0, n);
    float eps = (float) config.rmsNormEps();
    Rope rope = rope(seq.cache.length() + n, attention);

    for (int l = 0; l < blocks.size(); l++) {
      Block b = blocks.get(l);
      backend.rmsNorm(xb, x, b.attnNorm, eps);
      backend.matmulQkv(q, k, v, xb, b.wq, b.wk, b.wv);
      if (b.bq != null) {
        backend.addBias(q, b.bq);
        backend.addBias(k, b.bk);
        backend.addBias(v, b.bv);
      }
      backend.storeKv(seq.cache, l, q, k, v);
      backend.attention(att, q, seq.cache, l, rope, attention, seq.attentionStats);
      backend.matmulAdd(x, att, b.wo, xb);

      backend.mlp(x, b.ffnNorm, eps, b.wGate, b.wUp, b.wDown, xb, gate, up);
    }
    seq.cache.advance(n);
  }

  /**
   * Logits of rows {@code [from, to)} of the last chunk's hidden states, into {@code dst[from..to)}; with
   * {@code dst} null, one row, left in row 0 of {@code ws.logits} on the backend.
   */
  void logits(Workspace ws, int from, int to, float[][] dst) {
    for (int r = from; r < to; r += ws.logits.rows()) {
      int m = Math.min(ws.logits.rows(), to - r);
      Activations normed = ws.xb.rows(r, r + m), logits = ws.logits.rows(0, m);
      backend.rmsNorm(normed, ws.x.rows(r, r + m), outputNorm, (float) config.rmsNormEps());
      backend.matmul(logits, normed, output);
      for (int i = 0; dst != null && i < m; i++) {
        backend.read(logits, i, dst[r + i - from]);
      }
    }
  }

  /** Activation buffers for chunks of up to {@code maxChunk} tokens. */
  static final class Workspace {
    final Activations x, xb, q, k, v, att, gate, up, logits;

    Workspace(Backend b, ModelConfig c, int maxChunk) {
      x = b.allocate(maxChunk, c.hiddenSize());
      xb = b.allocate(maxChunk, c.hiddenSize());
      q = b.allocate(maxChunk, c.qDim());
      k = b.allocate(maxChunk, c.kvDim());
      v = b.allocate(maxChunk, c.kvDim());
      att = b.allocate(maxChunk, c.qDim());
      gate = b.allocate(maxChunk, c.intermediateSize());
      up = b.allocate(maxChunk, c.intermediateSize());
      // Logits of a whole chunk at once would be chunk × vocab floats: compute a few rows at a time.
      logits = b.allocate(Math.min(maxChunk, 16), c.vocabSize());
    }

    /** Gives the buffers back to {@code b} (a GPU's memory is not the garbage collector's to manage). */
    void free(Backend b) {
      for (Activations a : new Activations[] {x, xb, q, k, v, att, gate, up, logits}) {
        b.free(a);
      }
    }
  }
}
