package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The shared scans: every position of the unrolled loops, and the bound's promise. */
class FiniteTest {
  private static final float[] NON_FINITE = {
    Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY
  };

  @Test
  void all_andBounded_findANonFiniteValueAtEveryPosition() {
    float[] a = new float[37];
    Arrays.fill(a, -1.5f);
    for (int i = 3; i < 37; i++) {
      for (float bad : NON_FINITE) {
        a[i] = bad;
        assertFalse(Finite.all(a, 3, 37), i + " " + bad);
        assertFalse(Finite.bounded(a, 3, 37), i + " " + bad);
        assertTrue(Finite.all(a, 3, i), "before " + i);
        assertTrue(Finite.bounded(a, i + 1, 37), "after " + i);
      }
      a[i] = -1.5f;
    }
  }

  @Test
  void bounded_isFalseFrom2To111_andAThousandBoundedValuesSumFinite() {
    float largest = Math.nextDown(0x1p111f);
    float[] a = new float[1024];
    Arrays.fill(a, largest);
    assertTrue(Finite.bounded(a, 0, a.length));
    float sum = 0;
    for (float v : a) {
      sum += v;
    }
    assertTrue(Float.isFinite(sum) && Float.isFinite(sum / a.length));
    for (float big : new float[] {0x1p111f, -0x1p111f, Float.MAX_VALUE}) {
      a[700] = big;
      assertFalse(Finite.bounded(a, 0, a.length), Float.toString(big));
      assertTrue(Finite.all(a, 0, a.length));
    }
  }

  @Test
  void sumAll_catchesFiniteValuesWhoseSumOverflows_inReplicaOrder() {
    float[][] parts = {new float[11], new float[11], new float[11]};
    assertTrue(Finite.sumAll(parts, 0, 11));
    parts[0][9] = 3e38f;
    parts[1][9] = 3e38f;
    parts[2][9] = -3e38f; // the exact sum is finite; left to right it overflows at the second
    assertFalse(Finite.sumAll(parts, 0, 11));
    assertEquals(Float.POSITIVE_INFINITY, Finite.sumAt(parts, 9));
    assertTrue(Finite.sumAll(new float[][] {parts[0], parts[2]}, 0, 11));
    parts[0][9] = Float.NaN;
    assertFalse(Finite.sumAll(new float[][] {parts[0]}, 0, 11));
  }
}
