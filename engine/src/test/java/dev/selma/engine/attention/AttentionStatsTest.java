package dev.selma.engine.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class AttentionStatsTest {

  @Test
  void planChoicesAndLaterChoicesCountPerBlockAndToken() {
    AttentionStats stats = new AttentionStats(2, 16);
    // 8 tokens from 200 (group 6 of blocks 12-13): top 2 of the candidates [1, 11), which score 3 and 5 best.
    AttentionConfig c = AttentionConfig.selectAndMerge(16, 2, 2, 1, 1);
    AttentionPlan plan = AttentionPlanner.plan(c, 200, 8, 1, (head, queryBlock, from, to, dst) -> {
      for (int j = from; j < to; j++) {
        dst[j - from] = j == 3 || j == 5 ? 1 : 0;
      }
    });
    stats.record(1, plan);
    assertEquals(8, stats.count(1, 3));
    assertEquals(8, stats.count(1, 5));
    assertEquals(0, stats.count(1, 4));
    stats.recordChoices(1, new int[] {5, 9, 5});
    assertEquals(10, stats.count(1, 5));
    assertEquals(1, stats.count(1, 9));
    assertEquals(8 + 10 + 1, stats.selections(1, 0, 16 * 10));
  }

  @Test
  void choicesDeliveredLaterArriveBeforeAnyCountIsReadAndOnlyOnce() {
    AttentionStats stats = new AttentionStats(1, 16);
    int[] deliveries = {0};
    stats.deliverLater(() -> {
      deliveries[0]++;
      stats.recordChoices(0, new int[] {2});
    });
    assertEquals(1, stats.count(0, 2));
    assertEquals(1, stats.selections(0, 32, 48));
    assertEquals(1, deliveries[0]);
  }
}
