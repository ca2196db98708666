package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.ReplicaMean;

/**
 * One push's gradient as the run holds it: in the run's own arrays ({@code owned}, released with
 * the step) or where the replica wrote it ({@code owned} null).
 *
 * @param bounded every element is known {@link dev.roadless.optimizer.core.Finite#bounded}, so a
 *     mean with it needs no check; false for a gradient not yet read
 */
record Pushed(ReplicaMean.Input input, float[][] owned, boolean bounded) {
  static Pushed arrays(float[][] arrays, boolean bounded) {
    return new Pushed(ReplicaMean.of(arrays), arrays, bounded);
  }

  static Pushed shared(SharedGradient gradient) {
    return new Pushed(gradient, null, false);
  }
}
