package dev.roadless.common.bn;

import java.util.Arrays;

/**
 * Per-channel statistics of one BatchNorm layer's input in the mergeable form (count, mean, M2), in
 * double. {@code count} is the number of values each channel saw (N for [N,C], N*H*W for images);
 * {@code M2} is the sum of squared deviations from the mean, so the biased variance is {@code
 * M2/count} and the unbiased one {@code M2/(count-1)}.
 *
 * <p>Partial statistics from data-parallel replicas (or from consecutive batches) combine exactly
 * with {@link #merge} (Chan, Golub and LeVeque): the merge of two parts equals one pass over their
 * union up to double rounding. Averaging the replicas' PyTorch running buffers instead loses the
 * spread between their means. Immutable.
 */
public final class BatchNormStatistics {
  private final long count;
  private final double[] mean;
  private final double[] m2;

  private BatchNormStatistics(long count, double[] mean, double[] m2) {
    this.count = count;
    this.mean = mean;
    this.m2 = m2;
  }

  /**
   * Statistics from their parts (arrays copied).
   *
   * @throws IllegalArgumentException on a negative count, differing lengths, a negative or
   *     non-finite M2, or a non-finite mean
   */
  public static BatchNormStatistics of(long count, double[] mean, double[] m2) {
    if (count < 0) {
      throw new IllegalArgumentException("count must be >= 0, got " + count);
    }
    if (mean.length != m2.length || mean.length == 0) {
      throw new IllegalArgumentException(
          "mean and m2 need the same, non-zero length: " + mean.length + " vs " + m2.length);
    }
    for (int i = 0; i < mean.length; i++) {
      if (!Double.isFinite(mean[i]) || !Double.isFinite(m2[i]) || m2[i] < 0) {
        throw new IllegalArgumentException(
            "channel " + i + ": mean " + mean[i] + ", m2 " + m2[i] + " not a valid statistic");
      }
      if (count == 0 && (mean[i] != 0 || m2[i] != 0)) {
        throw new IllegalArgumentException("empty statistics must have mean 0 and m2 0");
      }
    }
    return new BatchNormStatistics(count, mean.clone(), m2.clone());
  }

  /** No values seen yet: the identity of {@link #merge}. */
  public static BatchNormStatistics empty(int channels) {
    return new BatchNormStatistics(0, new double[channels], new double[channels]);
  }

  /**
   * Exact two-pass statistics of one batch laid out row-major as {@code [n, channels, spatial]}
   * ({@code [N, C]} with spatial 1, or {@code [N, C, H*W]}): each channel sees {@code n*spatial}
   * values.
   */
  public static BatchNormStatistics ofBatch(float[] values, int n, int channels, int spatial) {
    if (n < 1 || channels < 1 || spatial < 1 || values.length != (long) n * channels * spatial) {
      throw new IllegalArgumentException(
          values.length + " values are not [" + n + ", " + channels + ", " + spatial + "]");
    }
    long count = (long) n * spatial;
    double[] mean = new double[channels];
    double[] m2 = new double[channels];
    for (int c = 0; c < channels; c++) {
      double sum = 0;
      for (int i = 0; i < n; i++) {
        int base = (i * channels + c) * spatial;
        for (int j = 0; j < spatial; j++) {
          sum += values[base + j];
        }
      }
      double mu = sum / count;
      double ss = 0;
      for (int i = 0; i < n; i++) {
        int base = (i * channels + c) * spatial;
        for (int j = 0; j < spatial; j++) {
          double d = values[base + j] - mu;
          ss += d * d;
        }
      }
      mean[c] = mu;
      m2[c] = ss;
    }
    return new BatchNormStatistics(count, mean, m2);
  }

  /**
   * The statistics of the union of both parts (Chan et al.): {@code delta = mean_b - mean_a; n =
   * n_a + n_b; mean = mean_a + delta*n_b/n; M2 = M2_a + M2_b + delta^2*n_a*n_b/n}.
   */
  public static BatchNormStatistics merge(BatchNormStatistics a, BatchNormStatistics b) {
    if (a.channels() != b.channels()) {
      throw new IllegalArgumentException(
          "cannot merge " + a.channels() + " channels with " + b.channels());
    }
    if (a.count == 0) {
      return b;
    }
    if (b.count == 0) {
      return a;
    }
    long n = Math.addExact(a.count, b.count);
    double na = a.count;
    double nb = b.count;
    double[] mean = new double[a.channels()];
    double[] m2 = new double[a.channels()];
    for (int c = 0; c < mean.length; c++) {
      double delta = b.mean[c] - a.mean[c];
      mean[c] = a.mean[c] + delta * nb / n;
      m2[c] = a.m2[c] + b.m2[c] + delta * delta * na * nb / n;
    }
    return new BatchNormStatistics(n, mean, m2);
  }

  /**
   * Statistics that reproduce given PyTorch running buffers when converted back: mean = {@code
   * running_mean}, M2 = {@code running_var*(count-1)}. Used to report an EMA or cumulative
   * estimate, which has no exact (count, mean, M2) form, with the number of values it was built
   * from as its weight.
   */
  public static BatchNormStatistics fromRunningBuffers(
      long count, float[] runningMean, float[] runningVar) {
    if (count < 2) {
      throw new IllegalArgumentException("count must be >= 2 to carry a variance, got " + count);
    }
    double[] mean = new double[runningMean.length];
    double[] m2 = new double[runningMean.length];
    for (int c = 0; c < mean.length; c++) {
      mean[c] = runningMean[c];
      m2[c] = (double) runningVar[c] * (count - 1);
    }
    return of(count, mean, m2);
  }

  public long count() {
    return count;
  }

  public int channels() {
    return mean.length;
  }

  /** A copy of the per-channel means. */
  public double[] mean() {
    return mean.clone();
  }

  /** A copy of the per-channel sums of squared deviations. */
  public double[] m2() {
    return m2.clone();
  }

  /** Biased variance {@code M2/count} per channel. */
  public double[] biasedVariance() {
    requireCount(1);
    double[] v = new double[mean.length];
    for (int c = 0; c < v.length; c++) {
      v[c] = m2[c] / count;
    }
    return v;
  }

  /**
   * Unbiased variance {@code M2/(count-1)} per channel, PyTorch's {@code running_var} convention.
   */
  public double[] unbiasedVariance() {
    requireCount(2);
    double[] v = new double[mean.length];
    for (int c = 0; c < v.length; c++) {
      v[c] = m2[c] / (count - 1);
    }
    return v;
  }

  /**
   * These statistics as PyTorch buffers for evaluation: {@code running_mean = mean}, {@code
   * running_var = M2/(count-1)} rounded to float32, with the given {@code num_batches_tracked}.
   */
  public BatchNormBuffers toBuffers(long numBatchesTracked, Double momentum) {
    requireCount(2);
    float[] rm = new float[mean.length];
    float[] rv = new float[mean.length];
    double[] uv = unbiasedVariance();
    for (int c = 0; c < rm.length; c++) {
      rm[c] = (float) mean[c];
      rv[c] = (float) uv[c];
    }
    return BatchNormBuffers.of(rm, rv, numBatchesTracked, momentum);
  }

  private void requireCount(long min) {
    if (count < min) {
      throw new IllegalStateException("needs at least " + min + " values, has " + count);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BatchNormStatistics s
        && s.count == count
        && Arrays.equals(s.mean, mean)
        && Arrays.equals(s.m2, m2);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(count) * 31 + Arrays.hashCode(mean) * 17 + Arrays.hashCode(m2);
  }

  @Override
  public String toString() {
    return "BatchNormStatistics{count=" + count + ", channels=" + mean.length + "}";
  }
}
