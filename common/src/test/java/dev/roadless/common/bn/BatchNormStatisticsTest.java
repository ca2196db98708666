package dev.roadless.common.bn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class BatchNormStatisticsTest {
  private static final int C = 3;
  private static final int SPATIAL = 5;

  /** [n, C, SPATIAL] values; channel c has mean offset + c and spread 1 + c. */
  private static float[] batch(int n, double offset, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] v = new float[n * C * SPATIAL];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < C; c++) {
        for (int j = 0; j < SPATIAL; j++) {
          v[(i * C + c) * SPATIAL + j] = (float) (offset + c + (1 + c) * r.nextGaussian());
        }
      }
    }
    return v;
  }

  private static float[] concat(float[] a, float[] b) {
    float[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static void assertClose(double[] expected, double[] actual, double rel) {
    for (int i = 0; i < expected.length; i++) {
      double scale = Math.max(Math.abs(expected[i]), 1e-300);
      assertTrue(
          Math.abs(expected[i] - actual[i]) <= rel * scale,
          "element " + i + ": " + expected[i] + " vs " + actual[i]);
    }
  }

  @Test
  void merge_twoHalves_equalsOnePassOverTheWhole() {
    float[] a = batch(40, 0.0, 1);
    float[] b = batch(24, 2.5, 2); // different size and mean: the spread term matters
    BatchNormStatistics whole = BatchNormStatistics.ofBatch(concat(a, b), 64, C, SPATIAL);
    BatchNormStatistics merged =
        BatchNormStatistics.merge(
            BatchNormStatistics.ofBatch(a, 40, C, SPATIAL),
            BatchNormStatistics.ofBatch(b, 24, C, SPATIAL));
    assertEquals(whole.count(), merged.count());
    assertEquals(64L * SPATIAL, merged.count());
    assertClose(whole.mean(), merged.mean(), 1e-12);
    assertClose(whole.m2(), merged.m2(), 1e-12);
    assertClose(whole.unbiasedVariance(), merged.unbiasedVariance(), 1e-12);
  }

  @Test
  void merge_isAssociativeAcrossManyParts_withinDoubleRounding() {
    BatchNormStatistics left = BatchNormStatistics.empty(C);
    BatchNormStatistics[] parts = new BatchNormStatistics[8];
    for (int k = 0; k < parts.length; k++) {
      parts[k] = BatchNormStatistics.ofBatch(batch(16, k * 0.3, 10 + k), 16, C, SPATIAL);
      left = BatchNormStatistics.merge(left, parts[k]);
    }
    BatchNormStatistics tree =
        BatchNormStatistics.merge(
            BatchNormStatistics.merge(
                BatchNormStatistics.merge(parts[0], parts[1]),
                BatchNormStatistics.merge(parts[2], parts[3])),
            BatchNormStatistics.merge(
                BatchNormStatistics.merge(parts[4], parts[5]),
                BatchNormStatistics.merge(parts[6], parts[7])));
    assertClose(left.mean(), tree.mean(), 1e-12);
    assertClose(left.m2(), tree.m2(), 1e-12);
  }

  @Test
  void averagingReplicaRunningBuffers_missesTheSpreadOfTheirMeans() {
    float[] a = batch(32, 0.0, 3);
    float[] b = batch(32, 2.0, 4);
    BatchNormStatistics sa = BatchNormStatistics.ofBatch(a, 32, C, SPATIAL);
    BatchNormStatistics sb = BatchNormStatistics.ofBatch(b, 32, C, SPATIAL);
    double[] exact = BatchNormStatistics.merge(sa, sb).unbiasedVariance();

    // Each replica's PyTorch buffers after one cumulative (momentum=None) pass over its half.
    BatchNormBuffers ra = BatchNormBuffers.fresh(C, null);
    ra.update(sa);
    BatchNormBuffers rb = BatchNormBuffers.fresh(C, null);
    rb.update(sb);
    float[] va = ra.runningVar();
    float[] vb = rb.runningVar();
    for (int c = 0; c < C; c++) {
      double averaged = (va[c] + vb[c]) / 2.0;
      double rel = (exact[c] - averaged) / exact[c];
      System.out.printf(
          "channel %d: exact pooled var %.6f, averaged replica running_var %.6f (%.1f%% low)%n",
          c, exact[c], averaged, 100 * rel);
      // The halves' means differ by 2, so the pooled variance exceeds the average by about
      // delta^2/4 = 1 (relative to variances of 1, 4, 9).
      assertTrue(rel > 0.08, "averaging buffers must underestimate here, got " + rel);
    }
  }

  @Test
  void ofBatch_matchesTextbookFormulas() {
    float[] v = {1, 2, 3, 4, 10, 20, 30, 40}; // [n=2, C=2, spatial=2]
    BatchNormStatistics s = BatchNormStatistics.ofBatch(v, 2, 2, 2);
    assertEquals(4, s.count());
    // channel 0: {1, 2, 10, 20}; channel 1: {3, 4, 30, 40}
    assertClose(new double[] {8.25, 19.25}, s.mean(), 1e-15);
    double m0 = sq(1 - 8.25) + sq(2 - 8.25) + sq(10 - 8.25) + sq(20 - 8.25);
    double m1 = sq(3 - 19.25) + sq(4 - 19.25) + sq(30 - 19.25) + sq(40 - 19.25);
    assertClose(new double[] {m0, m1}, s.m2(), 1e-15);
    assertClose(new double[] {m0 / 3, m1 / 3}, s.unbiasedVariance(), 1e-15);
    assertClose(new double[] {m0 / 4, m1 / 4}, s.biasedVariance(), 1e-15);
  }

  @Test
  void merge_withEmpty_returnsTheOtherSide() {
    BatchNormStatistics s = BatchNormStatistics.ofBatch(batch(4, 0, 5), 4, C, SPATIAL);
    assertSame(s, BatchNormStatistics.merge(BatchNormStatistics.empty(C), s));
    assertSame(s, BatchNormStatistics.merge(s, BatchNormStatistics.empty(C)));
  }

  @Test
  void toBuffers_andFromRunningBuffers_roundTrip() {
    BatchNormStatistics s = BatchNormStatistics.ofBatch(batch(8, 1, 6), 8, C, SPATIAL);
    BatchNormBuffers b = s.toBuffers(7, 0.1);
    assertEquals(7, b.numBatchesTracked());
    BatchNormStatistics back =
        BatchNormStatistics.fromRunningBuffers(s.count(), b.runningMean(), b.runningVar());
    // The buffers are float32, so the round trip is exact to float precision.
    assertClose(s.mean(), back.mean(), 1e-6);
    assertClose(s.unbiasedVariance(), back.unbiasedVariance(), 1e-6);
  }

  @Test
  void of_invalidInput_isRefused() {
    assertThrows(
        IllegalArgumentException.class,
        () -> BatchNormStatistics.of(-1, new double[1], new double[1]));
    assertThrows(
        IllegalArgumentException.class,
        () -> BatchNormStatistics.of(2, new double[2], new double[1]));
    assertThrows(
        IllegalArgumentException.class,
        () -> BatchNormStatistics.of(2, new double[] {0}, new double[] {-1}));
    assertThrows(
        IllegalArgumentException.class,
        () -> BatchNormStatistics.of(2, new double[] {Double.NaN}, new double[] {1}));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            BatchNormStatistics.merge(BatchNormStatistics.empty(2), BatchNormStatistics.empty(3)));
  }

  private static double sq(double x) {
    return x * x;
  }
}
