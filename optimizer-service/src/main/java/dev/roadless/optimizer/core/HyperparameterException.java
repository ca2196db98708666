package dev.roadless.optimizer.core;

/**
 * A hyperparameter out of range or set for a variant that does not use it. {@link #field} names it
 * as the wire (and PyTorch) spells it: {@code inner_momentum}, {@code warmup_steps}, ...
 */
public final class HyperparameterException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String field;

  HyperparameterException(String field, String message) {
    super(message);
    this.field = field;
  }

  /** The field at fault, in snake_case. */
  public String field() {
    return field;
  }
}
