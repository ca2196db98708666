package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.ReplicaMean;

/**
 * A push's gradient that stays where the replica wrote it (a shared-memory segment) until the run
 * reads it. The run reads it only through {@link ReplicaMean} (as one of the mean's inputs, or as
 * the mean of one: a checked copy), so every value the step uses is read once, after the push, and
 * checked in that pass.
 */
public interface SharedGradient extends ReplicaMean.Input {
  /**
   * Checks every element where it lies, without a copy, so a SYNC push that must wait for the other
   * replicas is refused at once rather than when the step completes.
   *
   * @return {@link ReplicaMean#FINITE}, or the lowest non-finite element as {@code tensor << 32 |
   *     element}
   */
  long checkInPlace();
}
