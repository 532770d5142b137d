package dev.selma.engine.backend.cuda;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionStats;
import dev.selma.engine.attention.Rope;
import dev.selma.engine.backend.Activations;
import dev.selma.engine.backend.Backend;
import dev.selma.engine.backend.Token;
import dev.selma.engine.backend.TopLogits;
import dev.selma.engine.backend.Weight;
import dev.selma.engine.kv.KvCache;
import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.model.GgmlType;
import dev.selma.engine.model.ModelConfig;
import dev.selma.engine.model.Quants;
import dev.selma.engine.model.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;

/**
 * The CUDA backend: weights, activations and the KV cache live on one GPU, every operation is a
 * kernel from the committed fatbin or a cuBLAS GEMM, queued in order on one stream; only {@link
 * #read} waits for the GPU. Weights are bf16 (or fp32 in {@link CudaOptions.Precision#FP32} mode),
 * or Q8_0 and Q4_0 matrices kept quantized ({@code q8_0.cu}, {@code q4_0.cu}) in bf16 mode, norms and
 * biases fp32, activations fp32, accumulation fp32 everywhere.
 *
 * <p>Thread-safe: operations are serialised on the backend (they share scratch buffers and the
 * stream), and each binds the GPU's context to the calling thread.
 */
public final class CudaBackend implements Backend {
  private static final Cleaner CLEANER = Cleaner.create();
  private static final long STAGING_BYTES = 64L << 20, RING_BYTES = 16L << 20;
  /** Floats converted per step when a weight is uploaded as fp32 and stored as bf16. */
  private static final int CONVERT_FLOATS = 4 << 20;
  private static final int THREADS = 256;
  /** Threads of logits_top's one block (TOP_THREADS in logits_top.cu). */
  private static final int TOP_THREADS = 1024;
  /** Tokens per KV page on the GPU ({@code KV_PAGE} in kv_layout.cuh), the prefix cache's unit there. */
  public static final int KV_PAGE_TOKENS = CudaKvCache.PAGE;
  /** Tokens up to which a bf16 matmul is gemv.cu's (GEMV_ROWS there) rather than a cuBLAS GEMM. */
  private static final int GEMV_ROWS = 4;
  /** float4s a thread of rms_norm.cu holds in registers (NORM_VECTORS there). */
  private static final int NORM_VECTORS = 4;
  /** Weight rows and threads of one block of q8_0.cu's GEMVs (Q8_ROWS and Q8_WARPS there). */
  private static final int Q8_ROWS = 4, Q8_THREADS = 8 * 32;
  /** The same of q4_0.cu's GEMVs (Q4_ROWS and Q4_WARPS there). */
  private static final int Q4_ROWS = 4, Q4_THREADS = 8 * 32;
  /** The same of q4_k.cu's GEMVs (Q4K_ROWS and Q4K_WARPS there). */
  private static final int Q4K_ROWS = 4, Q4K_THREADS = 4 * 32;

  /**
   * The one-token GEMVs of a quantized type ({@code gemv_<stem>_1}, {@code gemv3_<stem>}, {@code
   * gemv_swiglu_<stem>}): weight rows and threads of a block.
   */
  private record QuantizedGemv(String stem, int rows, int threads) {
    /** Those of {@code type}, or null where it has none. */
    static QuantizedGemv of(GgmlType type) {
      return switch (type) {
        case Q8_0 -> new QuantizedGemv("q8_0", Q8_ROWS, Q8_THREADS);
        case Q4_0 -> new QuantizedGemv("q4_0", Q4_ROWS, Q4_THREADS);
        case Q4_K -> new QuantizedGemv("q4_k", Q4K_ROWS, Q4K_THREADS);
        default -> null;
      };
    }
  }

  private final CudaOptions options;
  private final CudaDevice device;
  private final DeviceMemory memory;
  private final Staging staging;
  private final Cublas cublas;
  private final CudaAttention attention;
  /** Decode steps replayed from records: see {@link #decodeStep}. */
  private long replayedSteps;
  private DeviceBuffer gemmInput, loadScratch, weightScratch, topScratch;
  private final java.util.Map<Long, java.util.ArrayDeque<jcuda.Pointer>> pinnedPool = new java.util.HashMap<>();
  private boolean closed;

  private CudaBackend(CudaOptions options, CudaDevice device) {
    this.options = options;
    this.device = device;
    this.memory = new DeviceMemory(device);
    this.staging = new Staging(device, memory, STAGING_BYTES, RING_BYTES);
    this.cublas = new Cublas(device.stream());
    // fp32 mode is the exactness reference: its attention stays on the general kernel, which computes
    // in fp32, whatever the pages hold (the specialised kernels multiply in bf16).
    this.attention = new CudaAttention(device, memory, staging,
        options.specialisedAttention() && options.precision() == CudaOptions.Precision.BF16, this::settleChoices);
    for (String k : attention.kernels()) {
      device.allowSharedMemory(k, device.sharedMemoryOptIn());
    }
  }

  /**
   * Starts the backend on the options' device.
   *
   * @throws CudaException if the driver, the device, the kernels or cuBLAS cannot be used
   */
  public static CudaBackend open(CudaOptions options) {
    CudaDevice device = new CudaDevice(options.device());
    try {
      return new CudaBackend(options, device);
    } catch (RuntimeException | LinkageError e) {
      device.close();
      throw e;
    }
  }

  @Override
  public String name() {
    return "cuda (" + device.name() + ", " + options.precision().name().toLowerCase(java.util.Locale.ROOT)
        + (options.kvPrecision() == KvPrecision.FP8 ? ", fp8 KV" : "")
        + (options.dummyWeights() ? ", dummy weights" : "") + ")";
  }

  public CudaOptions options() {
    return options;
  }

  /** Device bytes of the KV pages that the prefix cache owns (adopted and not yet freed). */
  private final java.util.concurrent.atomic.AtomicLong cachedPageBytes = new java.util.concurrent.atomic.AtomicLong();

  void cachedPageBytes(long delta) {
    cachedPageBytes.addAndGet(delta);
  }

  long cachedPageBytes() {
    return cachedPageBytes.get();
  }

  /** Bytes of device memory this backend holds now (weights, activations, KV pages, scratch). */
  public long deviceBytes() {
    return memory.liveBytes();
  }

  /** The most device memory this backend held at once. */
  public long peakDeviceBytes() {
    return memory.peakBytes();
  }

  /** Free and total bytes of the device. */
  public synchronized long[] deviceMemoryInfo() {
    device.makeCurrent();
    return device.memoryInfo();
  }

  /**
   * Where the time went since the last call, by kernel and section (see {@link CudaDevice}); empty
   * unless the JVM runs with {@code -Dselma.cuda.profile=true}.
   */
  public synchronized String profile() {
    return device.profile();
  }

  /** Waits until every queued operation has run (for timing). */
  public synchronized void synchronize() {
    enter();
    device.synchronize();
  }

  /** Hands decode tokens' choices still on their way to the host to their statistics (CudaAttention). */
  private synchronized void settleChoices() {
    if (!closed) {
      enter();
      device.synchronize();
      attention.deliverChoices();
    }
  }

  /** Runs {@code work} as the backend's operations run: alone, with the GPU's context current. */
  synchronized <T> T locked(java.util.function.Supplier<T> work) {
    enter();
    return work.get();
  }

  /**
   * A page-locked host buffer of {@code bytes}, from the pool of those given back or new. Pinning and
   * unpinning cost milliseconds for a KV page, so buffers are kept for reuse until the backend closes.
   *
   * @throws CudaException if the system has no more page-locked memory
   */
  synchronized jcuda.Pointer takePinned(long bytes) {
    enter();
    java.util.ArrayDeque<jcuda.Pointer> free = pinnedPool.get(bytes);
    return free == null || free.isEmpty() ? device.allocatePinned(bytes) : free.pop();
  }

  /**
   * Gives a buffer from {@link #takePinned} back for reuse. Copies from it still queued on the stream
   * finish before any later copy into it, as every copy runs on the one stream.
   */
  synchronized void givePinned(jcuda.Pointer p, long bytes) {
    if (!closed) {
      pinnedPool.computeIfAbsent(bytes, b -> new java.util.ArrayDeque<>()).push(p);
    }
  }

  private void enter() {
    if (closed) {
      throw new IllegalStateException("the CUDA backend is closed");
    }
    device.makeCurrent();
    operations++;
    if (pendingStore != null) {
      KvStore store = pendingStore;
      pendingStore = null;
      store.launch(device);
    }
  }

  /** A decode token's keys and values that {@link #storeKv} left to its layer's {@link #attention}, or null. */
  private KvStore pendingStore;

  /**
   * Where the operation that just ran wrote its fp32 output also rounded to bf16 (in {@link #gemmInput}), so
   * that the next operation's GEMMs read it without a conversion pass: a prefill's RMSNorm before q/k/v and
   * gate/up, and its SwiGLU before the down projection. Valid for the operation right after the one that
   * wrote it only: any operation may write activations or the scratch.
   */
  private long bf16CopyAt = -1, bf16CopyOf, bf16CopyElements;

  /** Public operations entered so far; see {@link #bf16CopyAt}. */
  private long operations;

  /**
   * Where this operation may write a bf16 copy of {@code a} beside {@code a}, or 0 (no copy): decode's
   * GEMVs read fp32, and fp32 mode multiplies fp32. {@link #wroteBf16Copy} once the kernel is queued.
   */
  private long bf16CopyOf(CudaActivations a) {
    if (a.rows() <= GEMV_ROWS || options.precision() != CudaOptions.Precision.BF16) {
      return 0;
    }
    bf16CopyAt = -1; // the scratch is about to change
    gemmInput = grow(gemmInput, 2 * a.elements(), "bf16 GEMM input");
    return gemmInput.address();
  }

  /** Notes that this operation's kernel writes {@code a} rounded to bf16 at {@code copy} (0: it does not). */
  private void wroteBf16Copy(CudaActivations a, long copy) {
    if (copy != 0) {
      bf16CopyAt = operations;
      bf16CopyOf = a.address();
      bf16CopyElements = a.elements();
    }
  }

  @Override
  public synchronized Weight load(Tensor t) {
    enter();
    if (t.rows() > Integer.MAX_VALUE || t.cols() > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensor " + t + " is too large for the CUDA backend");
    }
    int rows = (int) t.rows(), cols = (int) t.cols();
    boolean vector = t.rank() == 1 || rows == 1;
    if (CudaWeight.keptQuantized(t.type()) && !vector && options.precision() == CudaOptions.Precision.BF16) {
      return loadQuantized(t, rows, cols);
    }
    GgmlType type = options.precision() == CudaOptions.Precision.FP32 || vector ? GgmlType.F32 : GgmlType.BF16;
    long n = (long) rows * cols;
    DeviceBuffer b = memory.allocate(n * bytes(type), "weight " + t);
    try {
      if (options.dummyWeights()) {
        fillDummy(t.name(), b, type, n, vector, cols);
      } else if (t.type() == type) {
        staging.upload(t.data(), b, 0);
      } else {
        uploadConverted(t, b, type, rows, cols);
      }
    } catch (RuntimeException e) {
      memory.release(b);
      throw e;
    }
    return new CudaWeight(t.name(), type, rows, cols, b);
  }

  /**
   * A Q8_0, Q4_0 or Q4_K matrix kept quantized: the file's blocks go up a run of rows at a time and
   * {@code <type>_unpack} splits them into quants and scales; dummy weights are generated in place
   * ({@code fill_<type>}).
   */
  private Weight loadQuantized(Tensor t, int rows, int cols) {
    GgmlType type = t.type();
    String stem = CudaWeight.stem(type);
    long n = (long) rows * cols, scalesAt = CudaWeight.scalesOffset(type, rows, cols);
    int blockElements = CudaWeight.blockElements(type), quantBytes = CudaWeight.blockQuantBytes(type),
        scaleBytes = CudaWeight.blockScaleBytes(type);
    DeviceBuffer b = memory.allocate(CudaWeight.quantizedBytes(type, rows, cols), "weight " + t);
    try {
      if (options.dummyWeights()) {
        long seed = options.seed() ^ (t.name().hashCode() * 0x9E3779B97F4A7C15L);
        launchFlat("fill_" + stem, n, b.address(), b.address() + scalesAt, n, seed, (float) (1 / Math.sqrt(cols)));
      } else {
        long rowBytes = type.bytesFor(cols);
        int rowsPerStep = (int) Math.max(1, 4L * CONVERT_FLOATS / rowBytes);
        loadScratch = grow(loadScratch, Math.min(rows, rowsPerStep) * rowBytes, "weight conversion");
        for (int r = 0; r < rows; r += rowsPerStep) {
          int m = Math.min(rowsPerStep, rows - r);
          staging.upload(t.data().asSlice(r * rowBytes, m * rowBytes), loadScratch, 0);
          long blocks = (long) m * cols / blockElements, firstBlock = (long) r * cols / blockElements;
          launchFlat(stem + "_unpack", blocks, b.address() + firstBlock * quantBytes,
              b.address() + scalesAt + scaleBytes * firstBlock, loadScratch.address(), blocks);
        }
      }
    } catch (RuntimeException e) {
      memory.release(b);
      throw e;
    }
    return new CudaWeight(t.name(), type, rows, cols, b);
  }

  /**
   * Uploads a tensor of another type: fp32 as it is, others dequantized on the host ({@link Quants},
   * the definition of every format) a run of rows at a time; bf16 targets are converted on the GPU.
   */
  private void uploadConverted(Tensor t, DeviceBuffer b, GgmlType type, int rows, int cols) {
    int rowsPerStep = Math.max(1, CONVERT_FLOATS / cols);
    float[] host = t.type() == GgmlType.F32 ? null : new float[Math.min(rows, rowsPerStep) * cols];
    long rowBytes = t.type().bytesFor(cols);
    for (int r = 0; r < rows; r += rowsPerStep) {
      int m = Math.min(rowsPerStep, rows - r);
      long floats = (long) m * cols;
      MemorySegment src;
      if (host == null) {
        src = t.data().asSlice(r * rowBytes, m * rowBytes);
      } else {
        Quants.dequantize(t.type(), t.data(), r * rowBytes, host, 0, (int) floats);
        src = MemorySegment.ofArray(host).asSlice(0, 4 * floats);
      }
      long dstOffset = (long) r * cols * bytes(type);
      if (type == GgmlType.F32) {
        staging.upload(src, b, dstOffset);
      } else {
        loadScratch = grow(loadScratch, 4L * CONVERT_FLOATS + 4L * cols, "weight conversion");
        staging.upload(src, loadScratch, 0);
        launchFlat("f32_to_bf16", floats, b.address() + dstOffset, loadScratch.address(), floats);
      }
    }
  }

  /**
   * Dummy weights: norms near 1, biases near 0, matrices uniform with the variance that keeps
   * activations at their scale ({@code ±1/√cols}); each tensor's values depend on the seed and its name.
   */
  private void fillDummy(String name, DeviceBuffer b, GgmlType type, long n, boolean vector, int cols) {
    boolean norm = name.contains("norm");
    float center = norm ? 1f : 0f;
    float radius = vector ? 0.1f : (float) (1 / Math.sqrt(cols));
    long seed = options.seed() ^ (name.hashCode() * 0x9E3779B97F4A7C15L);
    launchFlat(type == GgmlType.BF16 ? "fill_uniform_bf16" : "fill_uniform_f32", n, b.address(), n, seed, center,
        radius);
  }

  private static long bytes(GgmlType type) {
    return type == GgmlType.BF16 ? 2 : 4;
  }

  @Override
  public synchronized Activations allocate(int rows, int cols) {
    enter();
    if (rows < 0 || cols < 1) {
      throw new IllegalArgumentException("activations of " + rows + "x" + cols);
    }
    DeviceBuffer b = memory.allocate(4L * rows * cols, "activations of " + rows + "x" + cols + " floats");
    CudaActivations.Storage storage = new CudaActivations.Storage(b);
    DeviceMemory pool = memory;
    storage.release = CLEANER.register(storage, () -> pool.release(b));
    return new CudaActivations(storage, 0, rows, cols);
  }

  @Override
  public void free(Activations matrix) {
    ((CudaActivations) matrix).storage().release.clean(); // runs the release at most once
  }

  @Override
  public synchronized KvCache newKvCache(ModelConfig config, int maxTokens) {
    enter();
    CudaKvCache.Element element = options.kvPrecision() == KvPrecision.FP8
        ? CudaKvCache.Element.FP8
        : options.precision() == CudaOptions.Precision.FP32 ? CudaKvCache.Element.F32 : CudaKvCache.Element.BF16;
    return new CudaKvCache(config, maxTokens, element, this, device, memory, staging);
  }

  @Override
  public synchronized void embed(Activations out, Weight table, int[] tokens) {
    enter();
    CudaActivations o = (CudaActivations) out;
    CudaWeight w = (CudaWeight) table;
    check(o.rows() >= tokens.length && o.cols() == w.cols(), "embed shapes");
    for (int t : tokens) {
      if (t < 0 || t >= w.rows()) {
        throw new IllegalArgumentException("token id " + t + " outside the vocabulary [0, " + w.rows() + ")");
      }
    }
    if (tokens.length == 0) {
      return;
    }
    // One token (a decode step) goes by value: a copy ahead of the kernel would hold the GPU for ~10 µs.
    launchEmbed(o, w, tokens.length, tokens.length == 1 ? 0 : staging.ints(tokens), tokens[0]);
  }

  /** A token that {@link #greedy} chose is read where logits_top wrote it, not by the host. */
  @Override
  public synchronized void embed(Activations out, Weight table, Token token) {
    if (!(token instanceof ChosenToken c) || c.id >= 0) {
      embed(out, table, new int[] {token.id()});
      return;
    }
    enter();
    CudaActivations o = (CudaActivations) out;
    CudaWeight w = (CudaWeight) table;
    check(o.rows() >= 1 && o.cols() == w.cols(), "embed shapes");
    launchEmbed(o, w, 1, c.deviceId, 0);
  }

  /**
   * The embedding gather of {@code count} tokens: their ids at device address {@code ids}, or one {@code
   * token}. One token (a decode step) gets a thread for every four elements of its row (up to 1024), so
   * that each thread's loads and stores take few round trips to memory (a row of 4,096 bf16: 1.54 µs, 3.5
   * with 256 threads; H100, in a CUDA graph).
   */
  private void launchEmbed(CudaActivations o, CudaWeight w, int count, long ids, int token) {
    int threads = count == 1 ? Math.min(1024, 32 * ceilDiv(ceilDiv(w.cols(), 4), 32)) : THREADS;
    if (CudaWeight.keptQuantized(w.type())) {
      device.launch("embed_" + CudaWeight.stem(w.type()), count, 1, threads, 0, o.address(), w.address(),
          w.scales(), ids, token, w.cols());
    } else {
      device.launch(w.type() == GgmlType.BF16 ? "embed_bf16" : "embed_f32", count, 1, threads, 0,
          o.address(), w.address(), ids, token, w.cols());
    }
  }

  @Override
  public synchronized void rmsNorm(Activations out, Activations x, Weight weight, float eps) {
    enter();
    CudaActivations o = (CudaActivations) out, in = (CudaActivations) x;
    check(o.cols() == in.cols() && o.rows() >= in.rows(), "rmsNorm shapes");
    if (in.rows() > 0) {
      CudaActivations normed = (CudaActivations) o.rows(0, in.rows());
      long copy = bf16CopyOf(normed);
      launchRmsNorm(o.address(), copy, in, (CudaWeight) weight, eps);
      wroteBf16Copy(normed, copy);
    }
  }

  /** rms_norm of in's rows into {@code out} (fp32) and {@code out16} (bf16), either of them 0 for none. */
  private void launchRmsNorm(long out, long out16, CudaActivations in, CudaWeight w, float eps) {
    int n = in.cols();
    check(w.type() == GgmlType.F32 && (long) w.rows() * w.cols() == n, "rmsNorm weight " + w.name() + " shape");
    // A decode step's few rows: a thread for every NORM_VECTORS float4s of a row (up to 1024), so that one
    // round of loads reads it into registers and few warps meet in the reduction (a row of 4,096: 1.84 µs
    // with 256 threads, 2.18 with 1,024, 3.23 with 128; H100, in a CUDA graph); prefill's rows take THREADS.
    int threads = in.rows() <= GEMV_ROWS ? Math.min(1024, 32 * ceilDiv(ceilDiv(n, 4 * NORM_VECTORS), 32)) : THREADS;
    device.launch("rms_norm", in.rows(), 1, threads, 0, out, out16, in.address(), w.address(), n, eps);
  }

  @Override
  public synchronized void matmul(Activations out, Activations x, Weight weight) {
    enter();
    product((CudaActivations) out, (CudaActivations) x, (CudaWeight) weight, false, 0);
  }

  /** The product is added as it is written: no separate product and add kernels. */
  @Override
  public synchronized void matmulAdd(Activations x, Activations in, Weight w, Activations scratch) {
    enter();
    CudaActivations a = (CudaActivations) x;
    check(a.rows() == in.rows(), "matmulAdd shapes");
    product(a, (CudaActivations) in, (CudaWeight) w, true, 0);
  }

  /** Decode: one launch for the three bf16 projections, which read the same input. */
  @Override
  public synchronized void matmulQkv(Activations q, Activations k, Activations v, Activations x, Weight wq, Weight wk,
      Weight wv) {
    enter();
    CudaActivations in = (CudaActivations) x;
    CudaActivations[] outs = {(CudaActivations) q, (CudaActivations) k, (CudaActivations) v};
    CudaWeight[] ws = {(CudaWeight) wq, (CudaWeight) wk, (CudaWeight) wv};
    int tokens = in.rows();
    boolean oneLaunch = tokens >= 1 && tokens <= GEMV_ROWS && in.cols() % 8 == 0;
    boolean sameType = true;
    for (int i = 0; i < 3; i++) {
      checkProduct(outs[i], in, ws[i]);
      oneLaunch &= ws[i].type() == GgmlType.BF16;
      sameType &= ws[i].type() == ws[0].type();
    }
    QuantizedGemv quantized = tokens == 1 && sameType ? QuantizedGemv.of(ws[0].type()) : null;
    if (quantized != null) {
      int rows = quantized.rows();
      int blocks = ceilDiv(ws[0].rows(), rows) + ceilDiv(ws[1].rows(), rows) + ceilDiv(ws[2].rows(), rows);
      device.launch("gemv3_" + quantized.stem(), blocks, 1, quantized.threads(), 0, outs[0].address(),
          outs[1].address(), outs[2].address(), ws[0].address(), ws[1].address(), ws[2].address(), ws[0].scales(),
          ws[1].scales(), ws[2].scales(), in.address(), in.cols(), ws[0].rows(), ws[1].rows(), ws[2].rows());
      return;
    }
    if (!oneLaunch) {
      // Prefill: the input is rounded to bf16 once for the three GEMMs.
      boolean shared = viaGemm(ws[0], tokens) && viaGemm(ws[1], tokens) && viaGemm(ws[2], tokens);
      long bf16In = shared ? gemmInputOf(in) : 0;
      for (int i = 0; i < 3; i++) {
        product(outs[i], in, ws[i], false, bf16In);
      }
      return;
    }
    long warps = (long) ws[0].rows() + ws[1].rows() + ws[2].rows();
    device.launch("gemv3_bf16", ceilDiv(32L * warps, THREADS), 1, THREADS, 0, outs[0].address(), outs[1].address(),
        outs[2].address(), ws[0].address(), ws[1].address(), ws[2].address(), in.address(), in.cols(), ws[0].rows(),
        ws[1].rows(), ws[2].rows(), tokens);
  }

  private void checkProduct(CudaActivations o, CudaActivations in, CudaWeight w) {
    check(in.cols() == w.cols() && o.cols() == w.rows() && o.rows() >= in.rows(),
        "matmul " + w.name() + ": weight " + w.rows() + "x" + w.cols() + ", input " + in.rows() + "x" + in.cols()
            + ", output " + o.rows() + "x" + o.cols());
  }

  /** Whether {@link #product} multiplies {@code tokens} rows by {@code w} with a bf16 GEMM (not a GEMV, not fp32). */
  private static boolean viaGemm(CudaWeight w, int tokens) {
    if (w.type() == GgmlType.F32) {
      return false;
    }
    return CudaWeight.keptQuantized(w.type()) ? tokens > 1 : tokens > GEMV_ROWS || w.cols() % 8 != 0;
  }

  /**
   * o = W in, or o += W in when {@code accumulate}; a GEMM reads {@code bf16In}, the input already rounded
   * to bf16 by {@link #gemmInputOf}, or rounds it itself when that is 0.
   */
  private void product(CudaActivations o, CudaActivations in, CudaWeight w, boolean accumulate, long bf16In) {
    checkProduct(o, in, w);
    int tokens = in.rows(), add = accumulate ? 1 : 0;
    if (tokens == 0) {
      return;
    }
    if (w.type() == GgmlType.F32) {
      device.timed("cublasGemmEx", () -> cublas.linear(o.address(), in.address(), w.address(), tokens, w.rows(),
          w.cols(), Cublas.CUDA_R_32F, Cublas.CUDA_R_32F, accumulate));
    } else if (tokens == 1 && CudaWeight.keptQuantized(w.type())) {
      // Decode: q8_0.cu reads about half of bf16's bytes, q4_0.cu and q4_k.cu about a quarter.
      QuantizedGemv q = QuantizedGemv.of(w.type());
      device.launch("gemv_" + q.stem() + "_1", ceilDiv(w.rows(), q.rows()), 1, q.threads(), 0, o.address(),
          w.address(), w.scales(), in.address(), w.cols(), w.rows(), add);
    } else if (!CudaWeight.keptQuantized(w.type()) && tokens <= GEMV_ROWS && w.cols() % 8 == 0) {
      // Decode: bandwidth-bound, so gemv.cu streams the weights and keeps the activations fp32.
      device.launch("gemv_bf16", ceilDiv(32L * w.rows(), THREADS), 1, THREADS, 0, o.address(), w.address(),
          in.address(), w.cols(), w.rows(), tokens, add);
    } else {
      gemm(o.address(), Cublas.CUDA_R_32F, bf16In != 0 ? bf16In : gemmInputOf(in), w, tokens, accumulate);
    }
  }

  /** The activations rounded to bf16 (cuBLAS multiplies like types) in the GEMM input scratch: its address. */
  private long gemmInputOf(CudaActivations in) {
    long n = in.elements();
    if (bf16CopyAt >= operations - 1 && bf16CopyOf == in.address() && bf16CopyElements == n) {
      return gemmInput.address(); // the previous operation (or this one) wrote it
    }
    bf16CopyAt = -1; // the scratch now holds another input
    gemmInput = grow(gemmInput, 2 * n, "bf16 GEMM input");
    launchFlat("f32_to_bf16", n, gemmInput.address(), in.address(), n);
    return gemmInput.address();
  }

  /**
   * out = in W^T (or out += in W^T) through cuBLAS from the input rounded to bf16 at {@code bf16In}, sums in
   * fp32, written as {@code outType}. A quantized W is dequantized for it first: prefill is bound by the
   * GEMM's arithmetic, which costs many times the dequantization.
   */
  private void gemm(long out, int outType, long bf16In, CudaWeight w, int tokens, boolean accumulate) {
    long weight = w.address();
    if (CudaWeight.keptQuantized(w.type())) {
      long n = (long) w.rows() * w.cols();
      weightScratch = grow(weightScratch, 2 * n, "a quantized weight dequantized for a GEMM");
      launchFlat(CudaWeight.stem(w.type()) + "_to_bf16", n, weightScratch.address(), w.address(), w.scales(), n);
      weight = weightScratch.address();
    }
    long at = weight;
    device.timed("cublasGemmEx", () -> cublas.linear(out, bf16In, at, tokens, w.rows(), w.cols(), Cublas.CUDA_R_16BF,
        outType, accumulate));
  }

  /**
   * Prefill's MLP block in bf16 between its GEMMs, where they all run on cuBLAS in bf16: the normalized
   * input is written only rounded to bf16 (the GEMMs' input), the gate and up products are written in bf16
   * into gate's memory and up's, and swiglu_bf16 leaves the activation in place for the down projection,
   * whose sums are added to x in fp32. An fp32 pass would write and read each intermediate at twice the
   * bytes (PyTorch keeps them in bf16 too). Anything else takes the block one operation at a time.
   */
  @Override
  public synchronized void mlp(Activations x, Weight norm, float eps, Weight wGate, Weight wUp, Weight wDown,
      Activations normed, Activations gate, Activations up) {
    CudaActivations a = (CudaActivations) x, g = (CudaActivations) gate, u = (CudaActivations) up;
    CudaWeight wg = (CudaWeight) wGate, wu = (CudaWeight) wUp, wd = (CudaWeight) wDown;
    int tokens = a.rows();
    boolean bf16 = options.precision() == CudaOptions.Precision.BF16 && tokens > GEMV_ROWS && viaGemm(wg, tokens)
        && viaGemm(wu, tokens) && viaGemm(wd, tokens);
    if (!bf16) {
      Backend.super.mlp(x, norm, eps, wGate, wUp, wDown, normed, gate, up);
      return;
    }
    enter();
    int cols = a.cols(), inner = wg.rows();
    check(wg.cols() == cols && wu.cols() == cols && wu.rows() == inner && wd.cols() == inner && wd.rows() == cols
        && g.cols() == inner && u.cols() == inner && g.rows() >= tokens && u.rows() >= tokens
        && normed.cols() == cols && normed.rows() >= tokens, "mlp shapes");
    // The normalized rows go to the GEMM input scratch alone; no activation holds them in fp32.
    long in16 = bf16CopyOf((CudaActivations) normed.rows(0, tokens));
    launchRmsNorm(0L, in16, a, (CudaWeight) norm, eps);
    gemm(g.address(), Cublas.CUDA_R_16BF, in16, wg, tokens, false);
    gemm(u.address(), Cublas.CUDA_R_16BF, in16, wu, tokens, false);
    launchFlat("swiglu_bf16", (long) tokens * inner, g.address(), u.address(), (long) tokens * inner);
    gemm(a.address(), Cublas.CUDA_R_32F, g.address(), wd, tokens, true);
  }

  @Override
  public synchronized void matmulSwiglu(Activations gate, Activations up, Activations x, Weight wGate, Weight wUp) {
    enter();
    CudaActivations g = (CudaActivations) gate, in = (CudaActivations) x;
    CudaWeight wg = (CudaWeight) wGate, wu = (CudaWeight) wUp;
    int tokens = in.rows();
    QuantizedGemv quantized = tokens == 1 && wg.type() == wu.type() ? QuantizedGemv.of(wg.type()) : null;
    if (quantized != null && wg.rows() == wu.rows() && wg.cols() == wu.cols()) {
      check(in.cols() == wg.cols() && g.cols() == wg.rows() && g.rows() >= 1, "matmulSwiglu shapes");
      device.launch("gemv_swiglu_" + quantized.stem(), ceilDiv(wg.rows(), quantized.rows()), 1, quantized.threads(), 0,
          g.address(), wg.address(), wg.scales(), wu.address(), wu.scales(), in.address(), wg.cols(), wg.rows());
      return;
    }
    if (viaGemm(wg, tokens) && viaGemm(wu, tokens)) {
      // Prefill: the input is rounded to bf16 once for both GEMMs.
      long bf16In = gemmInputOf(in);
      product(g, in, wg, false, bf16In);
      product((CudaActivations) up, in, wu, false, bf16In);
      swiglu(gate, up);
      return;
    }
    if (tokens > GEMV_ROWS || wg.type() != GgmlType.BF16 || wu.type() != GgmlType.BF16 || wg.cols() % 8 != 0
        || wg.rows() != wu.rows() || wg.cols() != wu.cols()) {
      Backend.super.matmulSwiglu(gate, up, x, wGate, wUp);
      return;
    }
    check(in.cols() == wg.cols() && g.cols() == wg.rows() && g.rows() >= tokens, "matmulSwiglu shapes");
    if (tokens > 0) {
      // Decode: one pass streams both weights and writes the activation, where three launches would.
      device.launch("gemv_swiglu_bf16", ceilDiv(32L * wg.rows(), THREADS), 1, THREADS, 0, g.address(), wg.address(),
          wu.address(), in.address(), wg.cols(), wg.rows(), tokens);
    }
  }

  @Override
  public synchronized void addBias(Activations x, Weight bias) {
    enter();
    CudaActivations a = (CudaActivations) x;
    CudaWeight w = (CudaWeight) bias;
    check(w.type() == GgmlType.F32 && (long) w.rows() * w.cols() == a.cols(), "bias " + w.name() + " shape");
    launchFlat("add_bias", a.elements(), a.address(), w.address(), a.cols(), a.elements());
  }

  @Override
  public synchronized void add(Activations x, Activations delta) {
    enter();
    CudaActivations a = (CudaActivations) x, d = (CudaActivations) delta;
    check(a.cols() == d.cols() && d.rows() >= a.rows(), "add shapes");
    launchFlat("add_inplace", a.elements(), a.address(), d.address(), a.elements());
  }

  @Override
  public synchronized void swiglu(Activations gate, Activations up) {
    enter();
    CudaActivations g = (CudaActivations) gate, u = (CudaActivations) up;
    check(g.cols() == u.cols() && u.rows() >= g.rows(), "swiglu shapes");
    long copy = bf16CopyOf(g);
    launchFlat("swiglu", g.elements(), g.address(), copy, u.address(), g.elements());
    wroteBf16Copy(g, copy);
  }

  @Override
  public synchronized void storeKv(KvCache kvCache, int layer, Activations q, Activations k, Activations v) {
    enter();
    CudaKvCache cache = (CudaKvCache) kvCache;
    CudaActivations qq = (CudaActivations) q, kk = (CudaActivations) k, vv = (CudaActivations) v;
    int start = cache.length(), tokens = kk.rows(), d = cache.headDim, h = cache.kvHeads;
    int group = qq.cols() / d / h;
    check(qq.rows() == tokens && vv.rows() == tokens && kk.cols() == h * d && vv.cols() == h * d
        && group * h * d == qq.cols() && layer >= 0 && layer < cache.layers, "storeKv shapes");
    if (tokens == 0) {
      return;
    }
    cache.reserve(start + tokens);
    KvStore store = new KvStore(cache, layer, start, tokens, group, qq.address(), kk.address(), vv.address());
    if (tokens == 1) {
      pendingStore = store; // for the layer's attention (KvStore); any other operation launches it first
    } else {
      store.launch(device);
    }
  }

  @Override
  public synchronized void attention(Activations out, Activations q, KvCache kvCache, int layer, Rope rope,
      AttentionConfig config, AttentionStats stats) {
    KvStore store = pendingStore != null && pendingStore.cache() == kvCache && pendingStore.layer() == layer
        ? pendingStore : null;
    if (store != null) {
      pendingStore = null; // this attention's, not enter()'s to launch
    }
    enter();
    CudaActivations o = (CudaActivations) out, qq = (CudaActivations) q;
    CudaKvCache cache = (CudaKvCache) kvCache;
    check(o.rows() >= qq.rows() && o.cols() == qq.cols() && rope.headDim() == cache.headDim, "attention shapes");
    attention.run(o, qq, cache, layer, rope, config, stats, store);
  }

  /**
   * Records the step as CUDA graphs and replays them, when nothing in it waits for the GPU: the upload
   * rings have room for a step's plans, and no select-and-merge ranking must come back to the host
   * ({@link CudaAttention#capturable}). A step that does not qualify (one in 64 with key-bound
   * selection, when a block completes) runs kernel by kernel. Graphs spare the GPU the gaps between a
   * step's ~300 kernels; the host still issues each one (recording costs about what launching does).
   * A step recorded while the GPU still runs the one before (greedy generation queues it before reading
   * the token) is one graph; otherwise it is recorded in segments that the GPU runs while the host
   * records the next ({@link CudaDevice#beginStep}).
   */
  @Override
  public synchronized void decodeStep(KvCache kvCache, AttentionConfig config, Runnable step) {
    enter();
    CudaKvCache cache = (CudaKvCache) kvCache;
    attention.stepBegins();
    try {
      recordOrRun(cache, config, step);
    } catch (RuntimeException | Error e) {
      try {
        attention.stepEnds(); // after whatever the failed step queued
      } catch (RuntimeException ended) {
        e.addSuppressed(ended);
      }
      throw e;
    }
    attention.stepEnds();
  }

  private void recordOrRun(CudaKvCache cache, AttentionConfig config, Runnable step) {
    if (!options.graphs() || CudaDevice.synchronous() || !attention.capturable(cache, config)) {
      step.run();
      return;
    }
    // While the GPU still runs the step before (it chose this step's token), the step is recorded as one
    // segment: the GPU has work meanwhile, and each segment's start costs it a few µs.
    boolean busy = greedyChoices > 0 && !device.done(chosenDone[(int) ((greedyChoices - 1) % CHOSEN_SLOTS)]);
    staging.reserve(attention.stepUploadBytes(cache, config));
    device.beginStep();
    if (busy) {
      device.recordRestAsOneSegment();
    }
    try {
      step.run();
    } catch (RuntimeException | Error e) {
      pendingStore = null; // of the dropped step
      try {
        device.abandonStep();
      } catch (CudaException ended) {
        e.addSuppressed(ended);
      }
      attention.forgetRecordedStep(cache);
      staging.forgetReadOnly(); // the dropped segment may have held its copy
      throw e;
    }
    try {
      device.endStep();
    } catch (RuntimeException e) {
      staging.forgetReadOnly();
      throw e;
    }
    replayedSteps++;
  }

  /** How decode steps' recorded segments were replayed (for benchmarks). */
  public synchronized String graphCounts() {
    return replayedSteps + " decode steps replayed; " + device.graphCounts();
  }

  /** Decode steps run from a recorded graph so far (for tests). */
  synchronized long replayedSteps() {
    return replayedSteps;
  }

  @Override
  public synchronized void read(Activations x, int row, float[] dst) {
    enter();
    CudaActivations a = (CudaActivations) x;
    if (row < 0 || row >= a.rows()) {
      throw new IndexOutOfBoundsException("row " + row + " of " + a.rows());
    }
    staging.download(a.storage().buffer, a.offset(row), dst, a.cols());
    attention.deliverChoices(); // the download waited for the stream
  }

  @Override
  public synchronized TopLogits top(Activations x, int row, int k, float inverseTemperature) {
    enter();
    CudaActivations a = (CudaActivations) x;
    if (row < 0 || row >= a.rows()) {
      throw new IndexOutOfBoundsException("row " + row + " of " + a.rows());
    }
    if (k > TopLogits.MAX_K) {
      return Backend.super.top(x, row, k, inverseTemperature);
    }
    if (k < 1 || k > a.cols()) {
      throw new IllegalArgumentException("top " + k + " of " + a.cols() + " logits");
    }
    // logits_top.cu writes the denominator (a double), then k ids, then k values.
    topScratch = grow(topScratch, 8 + 8L * TopLogits.MAX_K, "the largest logits");
    device.launch("logits_top", 1, 1, TOP_THREADS, 0, a.address(row), a.cols(), k, inverseTemperature,
        topScratch.address(), 0L);
    MemorySegment host = MemorySegment.ofArray(new long[1 + k]);
    staging.download(topScratch, 0, host);
    attention.deliverChoices(); // the download waited for the stream
    int[] ids = host.asSlice(8, 4L * k).toArray(java.lang.foreign.ValueLayout.JAVA_INT);
    float[] values = host.asSlice(8 + 4L * k, 4L * k).toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
    return new TopLogits(ids, values, host.get(java.lang.foreign.ValueLayout.JAVA_DOUBLE, 0));
  }

  /** Launches a grid-stride kernel over {@code n} elements. */
  private void launchFlat(String kernel, long n, Object... args) {
    if (n == 0) {
      return;
    }
    long blocks = Math.min((n + THREADS - 1) / THREADS, 16L * device.multiprocessors());
    device.launch(kernel, (int) blocks, 1, THREADS, 0, args);
  }

  /**
   * Greedy choices: logits_top's output for k = 1 (the denominator, a double, then the id and its value) in
   * one of {@link #CHOSEN_SLOTS} slots of {@link #chosen} in turn, the id also written to the same slot of
   * {@link #chosenHost}, pinned memory mapped into the GPU's address space; a slot is read before it is
   * written again.
   */
  private static final int CHOSEN_SLOTS = 4, CHOSEN_BYTES = 16;
  private DeviceBuffer chosen;
  private CudaDevice.Mapped chosenHost;
  private final ChosenToken[] chosenTokens = new ChosenToken[CHOSEN_SLOTS];
  private final jcuda.driver.CUevent[] chosenDone = new jcuda.driver.CUevent[CHOSEN_SLOTS];
  private long greedyChoices;

  /** The greedy choice stays on the GPU: the next step's embedding reads it there (see {@link ChosenToken}). */
  @Override
  public boolean choosesAhead() {
    return true;
  }

  @Override
  public synchronized Token greedy(Activations x, int row) {
    enter();
    CudaActivations a = (CudaActivations) x;
    if (row < 0 || row >= a.rows()) {
      throw new IndexOutOfBoundsException("row " + row + " of " + a.rows());
    }
    if (chosen == null) {
      chosen = memory.allocate((long) CHOSEN_SLOTS * CHOSEN_BYTES, "greedy choices");
      chosenHost = device.allocateMapped(4L * CHOSEN_SLOTS);
    }
    int slot = (int) (greedyChoices++ % CHOSEN_SLOTS);
    if (chosenTokens[slot] != null) {
      chosenTokens[slot].settle();
    }
    if (chosenDone[slot] == null) {
      chosenDone[slot] = device.newEvent();
    }
    long at = chosen.address() + (long) slot * CHOSEN_BYTES;
    device.launch("logits_top", 1, 1, TOP_THREADS, 0, a.address(row), a.cols(), 1, 0f, at,
        chosenHost.deviceAddress() + 4L * slot);
    device.record(chosenDone[slot]);
    return chosenTokens[slot] = new ChosenToken(at + 8, slot);
  }

  /**
   * A greedy choice on its way to the host: its id is at {@code deviceId} on the GPU, where the next
   * decode step's embedding reads it, and in the host's slot once the kernel that chose it is done, for
   * which {@link #id} waits (for that kernel, not for steps queued since).
   */
  private final class ChosenToken implements Token {
    final long deviceId;
    final int slot;
    /** The id once read, or -1. */
    int id = -1;

    ChosenToken(long deviceId, int slot) {
      this.deviceId = deviceId;
      this.slot = slot;
    }

    @Override
    public int id() {
      synchronized (CudaBackend.this) {
        settle();
        return id;
      }
    }

    void settle() {
      if (id >= 0) {
        return;
      }
      if (closed) {
        throw new IllegalStateException("the CUDA backend is closed");
      }
      device.makeCurrent();
      device.await(chosenDone[slot]);
      id = chosenHost.host().getByteBuffer(4L * slot, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt();
      chosenTokens[slot] = null;
    }
  }

  private DeviceBuffer grow(DeviceBuffer b, long bytes, String what) {
    if (b != null && b.bytes() >= bytes) {
      return b;
    }
    if (b != null) {
      memory.release(b);
    }
    return memory.allocate(bytes, what);
  }

  private static int ceilDiv(long a, long b) {
    return (int) ((a + b - 1) / b);
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new IllegalArgumentException("shape mismatch: " + what);
    }
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    device.makeCurrent();
    try {
      device.synchronize();
      pinnedPool.values().forEach(free -> free.forEach(device::freePinned));
      pinnedPool.clear();
      if (chosenHost != null) {
        device.freePinned(chosenHost.host());
      }
      for (jcuda.driver.CUevent e : chosenDone) {
        if (e != null) {
          device.destroy(e);
        }
      }
      device.destroyExecs();
      attention.close();
      staging.close();
      cublas.close();
      memory.close();
    } finally {
      device.close();
    }
  }
}
