package dev.roadless.optimizer.core;

/**
 * The Schedule-Free variants this service implements. Each one pairs the shared schedule of
 * ALGORITHM.md section 2 with a different base update of z.
 */
public enum Variant {
  /** Schedule-Free SGD ({@code SGDScheduleFree}, {@code SGDScheduleFreeReference}). */
  SGD,
  /**
   * Schedule-Free AdamW with the bias correction inside the square root ({@code AdamWScheduleFree},
   * {@code AdamWScheduleFreeReference}, upstream 1.3 and later).
   */
  ADAMW,
  /** Schedule-Free AdamW as published: bias correction folded into the rate. */
  ADAMW_PAPER,
  /** Schedule-Free RAdam: rectification instead of warmup. */
  RADAM,
  /** {@code ScheduleFreeWrapper} around {@code torch.optim.SGD}. */
  WRAPPER_SGD,
  /** {@code ScheduleFreeWrapper} around {@code torch.optim.Adam}. */
  WRAPPER_ADAM;

  /** True for the two wrapper variants, whose base optimizer keeps its own settings. */
  public boolean isWrapper() {
    return this == WRAPPER_SGD || this == WRAPPER_ADAM;
  }

  /** True where the base update keeps a second moment {@code v} ({@code exp_avg_sq}). */
  public boolean hasSecondMoment() {
    return this != SGD && this != WRAPPER_SGD;
  }
}
