package dev.roadless.trainer.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ShardingTest {
  private static final int N = 1000;
  private static final int B = 64;
  private static final int R = 4;

  @Test
  void slice_sameArguments_reproduceAcrossInstances() {
    for (long k : new long[] {0, 1, 14, 15, 16, 1234}) {
      for (int r = 0; r < R; r++) {
        int[] a = new Sharding(7, N, B, R).slice(k, r);
        int[] b = Sharding.slice(7, k, r, R, B, N);
        assertArrayEquals(a, b, "step " + k + " replica " + r);
      }
    }
  }

  @Test
  void slice_restartedReplica_picksUpWhereItWas() {
    Sharding running = new Sharding(7, N, B, R);
    int[][] seen = new int[40][];
    for (int k = 0; k < 40; k++) {
      seen[k] = running.slice(k, 2);
    }
    Sharding restarted = new Sharding(7, N, B, R);
    for (int k = 25; k < 40; k++) {
      assertArrayEquals(seen[k], restarted.slice(k, 2));
    }
  }

  @Test
  void slice_replicasOfOneStep_areDisjointAndFormTheGlobalBatch() {
    Sharding s = new Sharding(3, N, B, R);
    for (long k = 0; k < 50; k++) {
      Set<Integer> union = new HashSet<>();
      int[] concatenated = new int[0];
      for (int r = 0; r < R; r++) {
        int[] part = s.slice(k, r);
        assertEquals(B / R, part.length);
        for (int i : part) {
          assertFalse(!union.add(i), "index " + i + " in two replicas at step " + k);
        }
        int old = concatenated.length;
        concatenated = Arrays.copyOf(concatenated, old + part.length);
        System.arraycopy(part, 0, concatenated, old, part.length);
      }
      assertEquals(B, union.size());
      assertArrayEquals(s.globalBatch(k), concatenated);
    }
  }

  @Test
  void globalBatches_ofOneEpoch_visitEachExampleAtMostOnce() {
    Sharding s = new Sharding(11, N, B, R);
    Set<Integer> seen = new HashSet<>();
    for (int k = 0; k < s.stepsPerEpoch(); k++) {
      for (int i : s.globalBatch(k)) {
        assertFalse(!seen.add(i), "example " + i + " twice in epoch 0");
      }
    }
    assertEquals(s.stepsPerEpoch() * B, seen.size());
  }

  @Test
  void slice_differentSeedsOrEpochs_differ() {
    Sharding s = new Sharding(1, N, B, R);
    assertFalse(Arrays.equals(s.slice(0, 0), new Sharding(2, N, B, R).slice(0, 0)));
    assertFalse(Arrays.equals(s.globalBatch(0), s.globalBatch(s.stepsPerEpoch())));
  }

  @Test
  void shuffle_isAPermutation() {
    int[] p = Sharding.shuffle(500, 99);
    int[] sorted = p.clone();
    Arrays.sort(sorted);
    for (int i = 0; i < sorted.length; i++) {
      assertEquals(i, sorted[i]);
    }
  }

  @Test
  void constructor_invalidArguments_areRefused() {
    assertThrows(IllegalArgumentException.class, () -> new Sharding(0, N, 63, 4));
    assertThrows(IllegalArgumentException.class, () -> new Sharding(0, N, 64, 0));
    assertThrows(IllegalArgumentException.class, () -> new Sharding(0, 10, 64, 4));
    Sharding s = new Sharding(0, N, B, R);
    assertThrows(IllegalArgumentException.class, () -> s.slice(-1, 0));
    assertThrows(IllegalArgumentException.class, () -> s.slice(0, R));
  }
}
