package dev.roadless.optimizer.run;

import java.util.Arrays;

/**
 * Each replica's most recent accepted push (its step and the fingerprint of its gradient), so that
 * a re-sent push for that (replica, step) is told apart: the identical one is a duplicate, a
 * different one a conflict. A push whose fingerprint is unknown ({@link #UNKNOWN}: the gradient
 * stayed in shared memory) never conflicts. Not thread-safe: the run calls it under its lock.
 */
final class PushPrints {
  /** The fingerprint of a gradient that was not read into the run's arrays. */
  static final long UNKNOWN = 0;

  private final long[] step;
  private final long[] print;

  PushPrints(int replicas) {
    step = new long[replicas];
    print = new long[replicas];
    Arrays.fill(step, -1);
  }

  /** True when {@code replica}'s accepted push for {@code pushStep} had another gradient. */
  boolean conflicts(int replica, long pushStep, long fingerprint) {
    return step[replica] == pushStep
        && fingerprint != UNKNOWN
        && print[replica] != UNKNOWN
        && print[replica] != fingerprint;
  }

  void accepted(int replica, long pushStep, long fingerprint) {
    step[replica] = pushStep;
    print[replica] = fingerprint;
  }

  /** {@code replica}'s accepted push was voided: none stands for its step now. */
  void forget(int replica) {
    step[replica] = -1;
    print[replica] = UNKNOWN;
  }
}
