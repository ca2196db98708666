package dev.roadless.optimizer.core;

/**
 * A variant's base update, the strategy that the shared {@link Schedule} drives: (a) the rate it
 * schedules for step k and (b) the fused kernel that moves z, x and the moments.
 */
interface BaseUpdate {

  /** The strategy of a variant. */
  static BaseUpdate of(Variant variant) {
    return switch (variant) {
      case SGD -> new SgdUpdate();
      case ADAMW -> new AdamWUpdate();
      case ADAMW_PAPER -> new AdamWPaperUpdate();
      case RADAM -> new RAdamUpdate();
      case WRAPPER_SGD -> new WrapperSgdUpdate();
      case WRAPPER_ADAM -> new WrapperAdamUpdate();
    };
  }

  /**
   * lr_k, the rate of step k (0-based), read fresh from {@code hp.lr()}: the warmup factor, RAdam's
   * rectification or the paper variant's sqrt(bias_correction2) folded in. It feeds lr_max and the
   * averaging weight.
   */
  double scheduledLr(Hyperparameters hp, long k);

  /** lr_max before the first step: -1 upstream, 0 in the wrappers. */
  default double initialLrMax() {
    return -1.0;
  }

  /** Whether a group with these settings keeps a first-moment buffer {@code m}. */
  boolean hasFirstMoment(Hyperparameters hp);

  /**
   * The kernel of one step.
   *
   * @param yBeta the beta that formed the current y (ignored on the first step, where y = x)
   */
  Kernel kernel(Hyperparameters hp, Schedule.Step step, double yBeta);

  /**
   * Writes y for elements {@code [from, to)}, formed with {@code beta} as this variant does, into
   * {@code out} from index {@code at} on.
   */
  default void deriveY(float[] x, float[] z, int from, int to, float[] out, int at, double beta) {
    Interp.fmaY(x, z, from, to, out, at, beta);
  }
}
