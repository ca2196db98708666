package dev.roadless.optimizer.core;

/** A gradient contained NaN or an infinity; the step was refused and nothing changed. */
public final class NonFiniteGradientException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String tensor;
  private final int replica;
  private final long index;

  public NonFiniteGradientException(String tensor, int replica, long index, float value) {
    super(
        "gradient of tensor '"
            + tensor
            + "' from replica "
            + replica
            + " is not finite at element "
            + index
            + " ("
            + value
            + ")");
    this.tensor = tensor;
    this.replica = replica;
    this.index = index;
  }

  /** The offending tensor's name. */
  public String tensor() {
    return tensor;
  }

  /** The offending replica (0-based, in the order the gradients were given). */
  public int replica() {
    return replica;
  }

  /** The first non-finite element's flat row-major index. */
  public long index() {
    return index;
  }
}
