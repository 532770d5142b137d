package dev.selma.solr;

import dev.selma.engine.Engine;
import dev.selma.lucene.PromptAssembler;
import dev.selma.lucene.TokenCounts;
import java.io.IOException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.solr.common.SolrException;
import org.apache.solr.common.SolrException.ErrorCode;

/**
 * A configured model on a node: loaded on first use and shared by every core, with a bounded number of
 * concurrent generations and a bounded, timed queue in front of them.
 */
public final class ModelSlot implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(ModelSlot.class.getName());

  /** What a loaded model brings. */
  public record Loaded(Engine engine, TokenCounts tokenCounts, PromptAssembler assembler) {}

  private final ModelSettings settings;
  private final Semaphore slots;
  private final AtomicInteger waiting = new AtomicInteger();
  private final Object lock = new Object();
  private volatile Loaded loaded;
  private volatile boolean closed;

  ModelSlot(ModelSettings settings) {
    this.settings = settings;
    this.slots = new Semaphore(settings.maxConcurrent(), true);
  }

  public ModelSettings settings() {
    return settings;
  }

  /** The loaded model, loading it on first use. A failed load is retried by the next request. */
  public Loaded loaded() {
    Loaded l = loaded;
    if (l != null) {
      return l;
    }
    synchronized (lock) {
      if (closed) {
        throw new SolrException(ErrorCode.SERVICE_UNAVAILABLE, "Selma model '" + settings.name() + "' is shut down");
      }
      if (loaded == null) {
        try {
          long t0 = System.nanoTime();
          Engine engine = Engine.load(settings.engineOptions());
          TokenCounts counts = new TokenCounts(engine.tokenizer(), settings.tokenCountCacheSize());
          loaded = new Loaded(engine, counts, new PromptAssembler(engine, counts));
          LOG.log(System.Logger.Level.INFO, "Selma: model ''{0}'' ({1}) loaded from {2} in {3} ms", settings.name(),
              engine.modelName(), settings.path(), (System.nanoTime() - t0) / 1_000_000);
        } catch (IOException | RuntimeException e) {
          throw new SolrException(ErrorCode.SERVER_ERROR, "Selma model '" + settings.name() + "' could not be loaded"
              + " from " + settings.path() + ": " + e.getMessage(), e);
        }
      }
      return loaded;
    }
  }

  /** The loaded model, or null when it is not loaded (never loads it). */
  public Loaded current() {
    return loaded;
  }

  /** Whether the model is loaded. */
  public boolean isLoaded() {
    return loaded != null;
  }

  /** Generations running now. */
  public int running() {
    return settings.maxConcurrent() - slots.availablePermits();
  }

  /** Requests waiting for a slot now. */
  public int waiting() {
    return waiting.get();
  }

  /** A generation slot; close it to give it back. */
  public interface Permit extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * Waits for a generation slot.
   *
   * @throws SolrException 503 when the queue is full or the wait times out
   */
  public Permit acquire() throws InterruptedException {
    // A free slot is taken at once (in turn: the semaphore is fair, so queued requests go first).
    if (slots.tryAcquire(0, TimeUnit.MILLISECONDS)) {
      return this::release;
    }
    if (waiting.incrementAndGet() > settings.maxQueued()) {
      waiting.decrementAndGet();
      throw busy("the queue of " + settings.maxQueued() + " waiting requests is full");
    }
    try {
      if (!slots.tryAcquire(settings.queueTimeoutMs(), TimeUnit.MILLISECONDS)) {
        throw busy("no generation slot became free within " + settings.queueTimeoutMs() + " ms");
      }
      return this::release;
    } finally {
      waiting.decrementAndGet();
    }
  }

  private void release() {
    slots.release();
  }

  private SolrException busy(String why) {
    return new SolrException(ErrorCode.SERVICE_UNAVAILABLE, "Selma model '" + settings.name() + "' is busy: "
        + settings.maxConcurrent() + " generation(s) running and " + why + "; try again later");
  }

  /** Waits (up to 30 s) for running generations to end, then frees the model. */
  @Override
  public void close() {
    synchronized (lock) {
      closed = true;
      Loaded l = loaded;
      loaded = null;
      if (l == null) {
        return;
      }
      boolean idle = false;
      try {
        idle = slots.tryAcquire(settings.maxConcurrent(), 30, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      if (!idle) {
        LOG.log(System.Logger.Level.WARNING, "Selma: closing model ''{0}'' with generations still running",
            settings.name());
      }
      l.engine().close();
    }
  }
}
