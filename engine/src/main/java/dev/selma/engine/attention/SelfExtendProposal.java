package dev.selma.engine.attention;

/**
 * A Self-Extend group size G and neighbour window W for a target length, from the rule in the
 * authors' README: {@code (1/2 ~ 2/3)·L > W + (N − W)/G}, with L the trained window and N the target.
 * The left side is where the largest position Self-Extend produces must stay: the upper end of the
 * trained range is under-trained, so the rule keeps a margin.
 *
 * <p>W is the largest power of two at most L/4 (the README's 1024 for a 4096 window). G is the
 * smallest that satisfies the rule with the safer bound L/2; if that G exceeds {@link #MAX_GROUP}, the
 * looser bound 2L/3 is tried; if G still exceeds it, the target is out of reach, because coarser
 * groups blur positions beyond what the authors found usable (their "reasonable" G is 2 to 64).
 *
 * @param groupSize G (1 when the target fits the trained window)
 * @param window W
 * @param reachable whether the rule can be met with G ≤ {@link #MAX_GROUP}
 * @param explanation why these values, or why the target is out of reach
 */
public record SelfExtendProposal(int groupSize, int window, boolean reachable, String explanation) {
  public static final int MAX_GROUP = 64;

  /**
   * @param targetLength N, the tokens to read
   * @param trainedWindow L, the model's trained context length
   */
  public static SelfExtendProposal propose(long targetLength, int trainedWindow) {
    if (targetLength < 1 || trainedWindow < 8) {
      throw new IllegalArgumentException("target length must be >= 1 and trained window >= 8, got "
          + targetLength + " and " + trainedWindow);
    }
    int w = Integer.highestOneBit(trainedWindow / 4);
    if (targetLength <= trainedWindow) {
      return new SelfExtendProposal(1, w, true,
          "the target of " + targetLength + " tokens fits the trained window of " + trainedWindow);
    }
    for (double bound : new double[] {trainedWindow / 2.0, 2.0 * trainedWindow / 3}) {
      long g = smallestGroup(targetLength, w, bound);
      if (g <= MAX_GROUP) {
        return new SelfExtendProposal((int) g, w, true, String.format(
            "W + (N - W)/G = %d + (%d - %d)/%d = %.0f < %.0f = %s of the trained window %d",
            w, targetLength, w, g, w + (double) (targetLength - w) / g, bound,
            bound == trainedWindow / 2.0 ? "1/2" : "2/3", trainedWindow));
      }
    }
    long needed = smallestGroup(targetLength, w, 2.0 * trainedWindow / 3);
    return new SelfExtendProposal(MAX_GROUP, w, false, "out of reach: " + targetLength + " tokens need G = "
        + needed + " > " + MAX_GROUP + " to keep W + (N - W)/G below 2/3 of the trained window " + trainedWindow);
  }

  /** The smallest G with {@code W + (N − W)/G < bound}. */
  private static long smallestGroup(long n, int w, double bound) {
    return (long) Math.floor((n - w) / (bound - w)) + 1;
  }
}
