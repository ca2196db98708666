package dev.roadless.optimizer.core;

/** Whether a group keeps a first-moment buffer cannot change on a live optimizer. */
final class FirstMoment {
  private FirstMoment() {}

  /**
   * @throws IllegalArgumentException when {@code next} would add or remove the buffer
   */
  static void requireSame(
      BaseUpdate update, String group, Hyperparameters now, Hyperparameters next) {
    if (update.hasFirstMoment(next) != update.hasFirstMoment(now)) {
      throw new IllegalArgumentException(
          "group '"
              + group
              + "': innerMomentum/baseMomentum cannot be switched between zero"
              + " and non-zero on a live optimizer (it decides whether a first-moment buffer"
              + " exists); build a new optimizer from an exported state instead");
    }
  }
}
