package dev.selma.engine.cli;

import dev.selma.engine.kv.CacheOptions;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The prefix KV cache for commands that run one request and exit: only a disk tier outlives the
 * process, so with a folder every page goes to disk when the request ends and the next command over
 * the same prompt prefix (the same documents) reads it back instead of recomputing it.
 */
final class CacheCliOptions {
  @Option(names = "--kv-cache-dir",
      description = "folder of cached KV pages, kept between runs: a prompt that starts like an earlier one reuses its pages")
  Path folder;

  @Option(names = "--kv-cache-bytes", defaultValue = "8g",
      description = "most bytes of pages in --kv-cache-dir (bytes or k, m, g; ${DEFAULT-VALUE})")
  String bytes;

  /** The cache these options ask for: off without a folder. */
  CacheOptions toOptions() {
    if (folder == null) {
      return CacheOptions.disabled();
    }
    long size;
    try {
      size = CacheOptions.parseSize(bytes);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--kv-cache-bytes: " + e.getMessage(), e);
    }
    // No fast or host tier: a page goes to disk as soon as the request lets go of it.
    return CacheOptions.defaults().withFastBytes(0).withHostBytes(0).withDisk(size, folder);
  }
}
