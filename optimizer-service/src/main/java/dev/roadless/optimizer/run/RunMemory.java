package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.StateSize;

/** What a run costs in memory, known from its configuration before anything is allocated. */
public final class RunMemory {
  private RunMemory() {}

  /**
   * The memory a run is admitted with: its state (z, x, moments), one y set, and the gradient sets
   * its protocol holds at once ({@link #gradientSets}). Further sets (a re-sent push, early
   * parameters, a push on PushGradients) are admitted when they are made.
   *
   * <p>y itself is not stored: the run's TRAIN snapshot derives it from x and z as readers encode
   * it. The one y set is there so that a step is never refused for it: it holds y of the previous
   * step for a reader still sending it when the next step commits (a detach), or the kernel's y
   * output for shared-memory segments. More than one at a time overdraws the budget.
   *
   * <p>An upload of initial values is assembled in a gradient set too (the reserved one when no
   * push holds it), so a run never holds more than this once it has trained.
   */
  public static long reservedBytes(RunConfig config) {
    long set = BudgetedSets.bytesPerSet(config.sizes());
    return Math.addExact(
        stateBytes(config),
        Math.multiplyExact(set, (long) TrainPublication.RESERVED + gradientSets(config)));
  }

  /** Bytes of one copy of the run's state (z, x, moments): an export or a snapshot. */
  public static long stateBytes(RunConfig config) {
    return StateSize.bytes(config.variant(), config.tensors(), config.groups());
  }

  /**
   * SYNC with one or two replicas: one set, into which every replica's chunks are summed as they
   * arrive ({@link GradientSum}); SYNC with more: every replica's pending push and a mean; ASYNC:
   * two pushes in flight.
   */
  static int gradientSets(RunConfig config) {
    if (config.mode() != RunConfig.Mode.SYNC) {
      return 2;
    }
    return config.replicas() <= 2 ? 1 : config.replicas() + 1;
  }

  /**
   * The run's recycled gradient sets: {@link #gradientSets} admitted with the run, as many kept for
   * reuse (with more replicas one per replica and a mean).
   */
  static BudgetedSets gradientBuffers(RunConfig config, MemoryBudget budget) {
    boolean one = config.mode() == RunConfig.Mode.SYNC && config.replicas() <= 2;
    return new BudgetedSets(
        config.sizes(),
        one ? 1 : config.replicas() + 1,
        gradientSets(config),
        budget,
        "a push's gradient buffer");
  }
}
