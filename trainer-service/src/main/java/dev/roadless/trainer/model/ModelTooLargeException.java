package dev.roadless.trainer.model;

/**
 * A model spec whose size cannot be held: a tensor, the whole model or one example's activations
 * over {@link ModelSpec}'s bounds. Thrown while validating, before anything is allocated.
 */
public final class ModelTooLargeException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String field;
  private final long limit;

  ModelTooLargeException(String field, long limit, String message) {
    super(message);
    this.field = field;
    this.limit = limit;
  }

  /** The StartRequest field at fault: {@code model.architecture} or {@code model.input_shape}. */
  public String field() {
    return field;
  }

  /** The bound that was passed, in elements. */
  public long limit() {
    return limit;
  }
}
