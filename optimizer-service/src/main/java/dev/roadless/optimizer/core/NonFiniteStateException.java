package dev.roadless.optimizer.core;

/**
 * A step made the state non-finite although every input was finite (an overflow: a huge gradient
 * times a large lr, a squared gradient beyond float32). The step was applied whole and the
 * optimizer refuses every later step; the caller decides what becomes of the run.
 */
public final class NonFiniteStateException extends IllegalStateException {
  private static final long serialVersionUID = 1L;

  private final long step;
  private final String tensor;
  private final long element;
  private final String slot;

  NonFiniteStateException(long step, String tensor, long element, String slot) {
    super(
        "step "
            + step
            + " made state array "
            + slot
            + " of tensor '"
            + tensor
            + "' non-finite at element "
            + element);
    this.step = step;
    this.tensor = tensor;
    this.element = element;
    this.slot = slot;
  }

  /** The step whose application failed (the completed-step count before it). */
  public long step() {
    return step;
  }

  public String tensor() {
    return tensor;
  }

  /** The first non-finite element's flat row-major index. */
  public long element() {
    return element;
  }

  /** The state array: {@code z}, {@code x}, {@code exp_avg_sq} or {@code exp_avg}. */
  public String slot() {
    return slot;
  }
}
