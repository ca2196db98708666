package dev.roadless.common.bn;

import java.util.Arrays;

/**
 * The running statistics of one BatchNorm layer with PyTorch semantics: {@code running_mean},
 * {@code running_var} (float32, per channel) and {@code num_batches_tracked}.
 *
 * <p>A training-mode forward normalises with the batch mean and the biased batch variance, and then
 * {@link #update} moves the buffers: {@code running = (1-f)*running + f*batch}, with the
 * <em>unbiased</em> batch variance ({@code biased*n/(n-1)}) for {@code running_var}, where {@code
 * f} is the momentum, or {@code 1/num_batches_tracked} (counted after the increment) when the
 * momentum is {@code null} (cumulative equal-weight average). The arithmetic follows PyTorch's CPU
 * kernel: the blend is computed in double and rounded once to float32.
 *
 * <p>Not thread-safe.
 */
public final class BatchNormBuffers {
  /** PyTorch's default BatchNorm momentum. */
  public static final double DEFAULT_MOMENTUM = 0.1;

  private final float[] runningMean;
  private final float[] runningVar;
  private long numBatchesTracked;
  private final Double momentum;

  private BatchNormBuffers(float[] mean, float[] var, long count, Double momentum) {
    if (mean.length != var.length || mean.length == 0) {
      throw new IllegalArgumentException(
          "running_mean and running_var need the same, non-zero length: "
              + mean.length
              + " vs "
              + var.length);
    }
    if (count < 0) {
      throw new IllegalArgumentException("num_batches_tracked must be >= 0, got " + count);
    }
    if (momentum != null && !(momentum > 0 && momentum <= 1)) {
      throw new IllegalArgumentException("momentum must be in (0, 1] or null, got " + momentum);
    }
    this.runningMean = mean;
    this.runningVar = var;
    this.numBatchesTracked = count;
    this.momentum = momentum;
  }

  /** Fresh buffers as PyTorch creates them: mean 0, variance 1, count 0. */
  public static BatchNormBuffers fresh(int channels, Double momentum) {
    float[] var = new float[channels];
    Arrays.fill(var, 1f);
    return new BatchNormBuffers(new float[channels], var, 0, momentum);
  }

  /** Buffers holding the given values (copied). */
  public static BatchNormBuffers of(
      float[] runningMean, float[] runningVar, long numBatchesTracked, Double momentum) {
    return new BatchNormBuffers(
        runningMean.clone(), runningVar.clone(), numBatchesTracked, momentum);
  }

  /** A deep copy. */
  public BatchNormBuffers copy() {
    return of(runningMean, runningVar, numBatchesTracked, momentum);
  }

  /** The same values with another momentum ({@code null}: cumulative average). */
  public BatchNormBuffers withMomentum(Double newMomentum) {
    return of(runningMean, runningVar, numBatchesTracked, newMomentum);
  }

  /**
   * Folds one training batch into the buffers, exactly as a PyTorch training-mode forward does.
   *
   * @param batchMean per-channel batch mean
   * @param batchVarBiased per-channel biased batch variance (divided by n)
   * @param n elements per channel in the batch: N for [N,C], N*H*W for images; at least 2
   */
  public void update(float[] batchMean, float[] batchVarBiased, long n) {
    int c = channels();
    if (batchMean.length != c || batchVarBiased.length != c) {
      throw new IllegalArgumentException(
          "batch statistics have " + batchMean.length + " channels, buffers " + c);
    }
    if (n < 2) {
      // PyTorch refuses this too ("Expected more than 1 value per channel when training").
      throw new IllegalArgumentException("need more than 1 value per channel, got n=" + n);
    }
    numBatchesTracked++;
    double f = momentum != null ? momentum : 1.0 / (double) numBatchesTracked;
    double unbias = (double) n / (double) (n - 1);
    for (int i = 0; i < c; i++) {
      double unbiasedVar = (double) batchVarBiased[i] * unbias;
      runningMean[i] = (float) (f * batchMean[i] + (1 - f) * runningMean[i]);
      runningVar[i] = (float) (f * unbiasedVar + (1 - f) * runningVar[i]);
    }
  }

  /**
   * Folds one batch's exact statistics into the buffers (mean and unbiased variance {@code
   * M2/(count-1)} in double), with the same blend and single rounding as {@link #update(float[],
   * float[], long)}.
   */
  public void update(BatchNormStatistics batch) {
    int c = channels();
    if (batch.channels() != c) {
      throw new IllegalArgumentException(
          "batch statistics have " + batch.channels() + " channels, buffers " + c);
    }
    if (batch.count() < 2) {
      throw new IllegalArgumentException("need more than 1 value per channel");
    }
    double[] mean = batch.mean();
    double[] var = batch.unbiasedVariance();
    numBatchesTracked++;
    double f = momentum != null ? momentum : 1.0 / (double) numBatchesTracked;
    for (int i = 0; i < c; i++) {
      runningMean[i] = (float) (f * mean[i] + (1 - f) * runningMean[i]);
      runningVar[i] = (float) (f * var[i] + (1 - f) * runningVar[i]);
    }
  }

  /** Sets the buffers to mean 0, variance 1, count 0 ({@code reset_running_stats()}). */
  public void reset() {
    Arrays.fill(runningMean, 0f);
    Arrays.fill(runningVar, 1f);
    numBatchesTracked = 0;
  }

  public int channels() {
    return runningMean.length;
  }

  /** A copy of {@code running_mean}. */
  public float[] runningMean() {
    return runningMean.clone();
  }

  /** A copy of {@code running_var} (unbiased convention). */
  public float[] runningVar() {
    return runningVar.clone();
  }

  public long numBatchesTracked() {
    return numBatchesTracked;
  }

  /** The momentum, or {@code null} for the cumulative average. */
  public Double momentum() {
    return momentum;
  }
}
