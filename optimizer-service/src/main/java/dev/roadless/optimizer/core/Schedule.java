package dev.roadless.optimizer.core;

/**
 * The per-step schedule of ALGORITHM.md section 2, shared by every variant: warmup, lr_max, the
 * averaging weight and c_k. One instance per parameter group; scalars are doubles, computed in the
 * same order as the upstream Python so that they match it bit for bit.
 *
 * <p>A step is two-phase: {@link #next} computes the new scalars without changing anything, the
 * kernels run, then {@link #commit} stores them. A refused step therefore leaves no trace.
 */
final class Schedule {
  /** The largest step count a run reaches: 2^53 - 1, exact in a double and in JavaScript. */
  static final long MAX_STEP = (1L << 53) - 1;

  private long k;
  private double weightSum;
  private double lrMax;
  private double lrK;
  private double ck;
  private double yBeta;

  /** A fresh schedule; {@code initialLrMax} is -1 for the Schedule-Free classes, 0 for wrappers. */
  Schedule(double initialLrMax) {
    this(0, 0.0, initialLrMax, 0.0, 0.0, Double.NaN);
  }

  Schedule(long k, double weightSum, double lrMax, double lrK, double ck, double yBeta) {
    this.k = k;
    this.weightSum = weightSum;
    this.lrMax = lrMax;
    this.lrK = lrK;
    this.ck = ck;
    this.yBeta = yBeta;
  }

  /** The scalars of one step k. */
  record Step(long k, double lrK, double lrMax, double weight, double weightSum, double ck) {
    /** True for the group's first step, where y = x = z is the initial value exactly. */
    boolean first() {
      return k == 0;
    }
  }

  /** Linear warmup factor s_k: (k+1)/W during warmup, else 1. Applies from the first step on. */
  static double warmupFactor(long k, long warmupSteps) {
    return k < warmupSteps ? (double) (k + 1) / warmupSteps : 1.0;
  }

  /** Step k's scalars for the scheduled rate {@code lrK}; changes nothing. */
  Step next(double scheduledLr, Hyperparameters hp) {
    double newLrMax = Math.max(scheduledLr, lrMax);
    double weight = Math.pow(k + 1, hp.r()) * Math.pow(newLrMax, hp.weightLrPower());
    // Repeated addition, as upstream: a closed form would round differently.
    double newSum = weightSum + weight;
    // Upstream catches ZeroDivisionError and uses 0; we never produce NaN.
    double c = newSum == 0.0 ? 0.0 : weight / newSum;
    return new Step(k, scheduledLr, newLrMax, weight, newSum, c);
  }

  /** Stores a step's scalars after its kernels ran; {@code beta} formed the new y. */
  void commit(Step s, double beta) {
    if (s.k() != k) {
      throw new IllegalStateException("schedule step " + s.k() + " committed at k=" + k);
    }
    k = s.k() + 1;
    lrK = s.lrK();
    lrMax = s.lrMax();
    weightSum = s.weightSum();
    ck = s.ck();
    yBeta = beta;
  }

  long k() {
    return k;
  }

  double weightSum() {
    return weightSum;
  }

  double lrMax() {
    return lrMax;
  }

  double lrK() {
    return lrK;
  }

  double ck() {
    return ck;
  }

  /**
   * The beta that the current y was formed with (y is derived from x and z, and a live change of
   * beta must not move the point where the trainers already computed gradients). NaN before the
   * first step, where y = x.
   */
  double yBeta() {
    return yBeta;
  }
}
