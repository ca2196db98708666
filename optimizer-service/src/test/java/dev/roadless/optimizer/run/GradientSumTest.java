package dev.roadless.optimizer.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.roadless.optimizer.core.ReplicaMean;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The one set of a SYNC step with two replicas: whatever the chunk sizes of each push, the order of
 * each push's chunks and how the two interleave, G is bit for bit {@link ReplicaMean}'s mean
 * (summed in replica order, divided by 2 in float32).
 */
class GradientSumTest {
  private static final long[] SIZES = {10_007, 3, 65_536};

  @Test
  void anyChunkingAndArrivalOrder_bitIdenticalToReplicaMean() {
    Random random = new Random(42);
    for (int trial = 0; trial < 200; trial++) {
      float[][][] g = {values(random), values(random)};
      int[] chunk = {1 + random.nextInt(20_000), 1 + random.nextInt(20_000)};
      if (trial % 7 == 0) {
        chunk[0] = 1 + random.nextInt(5);
      }
      float[][] want = new float[SIZES.length][];
      ReplicaMean.Input[] in = {ReplicaMean.of(g[0]), ReplicaMean.of(g[1])};
      for (int t = 0; t < SIZES.length; t++) {
        want[t] = new float[(int) SIZES[t]];
        ReplicaMean.range(in, t, 0, want[t].length, want[t], false);
      }
      BudgetedSets sets = new BudgetedSets(SIZES, 1, 1, MemoryBudget.unlimited(), "test");
      GradientSum sum =
          new GradientSum(new Object(), "run", List.of("a", "b", "c"), sets, 2, () -> 0, r -> {});
      SummedPush[] p = {
        sum.join(0, 0, (push, bounded, print) -> null),
        sum.join(1, 0, (push, bounded, print) -> null)
      };
      List<List<int[]>> queues = new ArrayList<>();
      for (int r = 0; r < 2; r++) {
        List<int[]> q = new ArrayList<>();
        for (int t = 0; t < SIZES.length; t++) {
          for (int from = 0; from < SIZES[t]; from += chunk[r]) {
            q.add(new int[] {t, from, (int) Math.min(SIZES[t], from + chunk[r])});
          }
        }
        if (random.nextBoolean()) {
          Collections.shuffle(q, random);
        }
        queues.add(q);
      }
      int[] next = new int[2];
      while (next[0] < queues.get(0).size() || next[1] < queues.get(1).size()) {
        int r = random.nextInt(2);
        if (next[r] == queues.get(r).size()) {
          r = 1 - r;
        }
        int[] c = queues.get(r).get(next[r]++);
        float[] scratch = new float[c[2] - c[1]];
        System.arraycopy(g[r][c[0]], c[1], scratch, 0, scratch.length);
        sum.add(p[r], c[0], c[1], scratch, scratch.length);
      }
      float[][] got = sum.accept(p[0]);
      sum.accept(p[1]);
      assertEquals(true, sum.complete());
      for (int t = 0; t < SIZES.length; t++) {
        assertArrayEquals(want[t], got[t], "trial " + trial + " tensor " + t);
      }
    }
  }

  private static float[][] values(Random random) {
    float[][] out = new float[SIZES.length][];
    for (int t = 0; t < SIZES.length; t++) {
      out[t] = new float[(int) SIZES[t]];
      for (int i = 0; i < out[t].length; i++) {
        out[t][i] = (float) random.nextGaussian() * (1 << random.nextInt(20));
      }
    }
    return out;
  }
}
