package dev.selma.engine.cli;

import dev.selma.engine.attention.AttentionConfig;
import dev.selma.engine.attention.AttentionConfig.Positions;
import java.util.Locale;
import picocli.CommandLine.Option;

/** The attention and position options shared by commands that run a model. */
final class AttentionOptions {
  @Option(names = "--attention", defaultValue = "auto",
      description = "dense or select-merge; auto (the default) follows the model's profile unless --positions is given")
  String scheme;

  @Option(names = "--block-size", defaultValue = "64", description = "tokens per block (${DEFAULT-VALUE})")
  int blockSize;

  @Option(names = "--top-k-blocks", defaultValue = "64", description = "blocks chosen per query group (${DEFAULT-VALUE})")
  int topK;

  @Option(names = "--merge", defaultValue = "4", description = "query blocks sharing one choice (${DEFAULT-VALUE})")
  int merge;

  @Option(names = "--selection", defaultValue = "mean",
      description = "how select-merge ranks blocks: mean (the paper's), bound (key bounds), or query (key bounds, and a "
          + "decode step ranks with its own query)")
  String selection;

  @Option(names = "--sink-blocks", defaultValue = "1") int sinkBlocks;

  @Option(names = "--window-blocks", defaultValue = "4") int windowBlocks;

  @Option(names = "--positions", defaultValue = "auto",
      description = "original, reindexed, self-extend or crd; auto: original unless the model's profile applies")
  String positions;

  @Option(names = "--group", defaultValue = "4", description = "Self-Extend group size G (${DEFAULT-VALUE})")
  int group;

  @Option(names = "--neighbor-window", defaultValue = "512", description = "Self-Extend neighbour window W (${DEFAULT-VALUE})")
  int neighborWindow;

  @Option(names = "--crd-period", defaultValue = "4096", description = "CRD NTK position period (${DEFAULT-VALUE})")
  int crdPeriod;

  @Option(names = "--crd-scale", defaultValue = "1", description = "CRD NTK base scale (${DEFAULT-VALUE})")
  double crdScale;

  @Option(names = "--ntk-scale", defaultValue = "1", description = "static NTK-aware base scale, 1 = off")
  double ntkScale;

  /** The configuration asked for, or null to follow the model's profile. */
  AttentionConfig toConfig() {
    if (scheme.equalsIgnoreCase("auto") && positions.equalsIgnoreCase("auto")) {
      return null;
    }
    AttentionConfig.Scheme s = switch (scheme.toLowerCase(Locale.ROOT)) {
      case "dense", "auto" -> AttentionConfig.Scheme.DENSE;
      case "select-merge", "select-and-merge" -> AttentionConfig.Scheme.SELECT_AND_MERGE;
      default -> throw new IllegalArgumentException("unknown attention '" + scheme + "'; use dense or select-merge");
    };
    Positions p = switch (positions.toLowerCase(Locale.ROOT)) {
      case "original", "auto" -> new AttentionConfig.Original();
      case "reindexed" -> new AttentionConfig.Reindexed();
      case "self-extend" -> new AttentionConfig.SelfExtend(group, neighborWindow);
      case "crd" -> new AttentionConfig.CrdNtk(crdPeriod, crdScale);
      default -> throw new IllegalArgumentException(
          "unknown positions '" + positions + "'; use original, reindexed, self-extend or crd");
    };
    AttentionConfig.Selection sel = AttentionConfig.Selection.named(selection);
    return new AttentionConfig(s, blockSize, topK, merge, sinkBlocks, windowBlocks, p, ntkScale, sel);
  }
}
