package dev.selma.solr;

import java.io.Closeable;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.solr.common.SolrException;
import org.apache.solr.common.SolrException.ErrorCode;
import org.apache.solr.core.CoreContainer;

/**
 * The models of one Solr node, configured once in {@code solr.xml} ({@link ModelSettings}), shared by
 * every core and closed when the node shuts down. It lives in the {@link CoreContainer}'s object cache,
 * which closes it with the container.
 */
public final class SelmaModels implements Closeable {
  static final String KEY = "dev.selma.solr.SelmaModels";

  private final Map<String, ModelSlot> slots = new TreeMap<>();
  private final ScheduledExecutorService timers;

  SelmaModels(Map<String, ModelSettings> settings) {
    settings.forEach((name, s) -> slots.put(name, new ModelSlot(s)));
    AtomicInteger n = new AtomicInteger();
    ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, r -> {
      Thread th = new Thread(r, "selma-timer-" + n.incrementAndGet());
      th.setDaemon(true);
      return th;
    });
    t.setRemoveOnCancelPolicy(true);
    this.timers = Executors.unconfigurableScheduledExecutorService(t);
  }

  /** The node's models, created from the container's properties on first use. */
  public static SelmaModels of(CoreContainer container) {
    Object o;
    try {
      o = container.getObjectCache().computeIfAbsent(KEY, k -> create(container.getContainerProperties()));
    } catch (IllegalArgumentException e) {
      throw new SolrException(ErrorCode.SERVER_ERROR, "Selma: bad model configuration in solr.xml: " + e.getMessage(), e);
    }
    if (o instanceof SelmaModels m) {
      return m;
    }
    throw new SolrException(ErrorCode.SERVER_ERROR, "Selma's classes were loaded by more than one class loader on"
        + " this node: put the Selma plugin jar on the node's class path (<solr_home>/lib, a sharedLib folder of"
        + " solr.xml or a module), not in a core's lib folder");
  }

  static SelmaModels create(Properties props) {
    return new SelmaModels(ModelSettings.parseAll(props));
  }

  /** The configured model {@code name}, or null. */
  public ModelSlot slot(String name) {
    return slots.get(name);
  }

  public Map<String, ModelSlot> slots() {
    return java.util.Collections.unmodifiableMap(slots);
  }

  /** Runs time limits and client watches. */
  ScheduledExecutorService timers() {
    return timers;
  }

  /** Token-count cache hits over all loaded models. */
  public long tokenCountHits() {
    return slots.values().stream().map(ModelSlot::current).filter(java.util.Objects::nonNull)
        .mapToLong(l -> l.tokenCounts().hits()).sum();
  }

  /** Token-count cache misses over all loaded models. */
  public long tokenCountMisses() {
    return slots.values().stream().map(ModelSlot::current).filter(java.util.Objects::nonNull)
        .mapToLong(l -> l.tokenCounts().misses()).sum();
  }

  @Override
  public void close() {
    timers.shutdownNow();
    slots.values().forEach(ModelSlot::close);
    try {
      timers.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
