package dev.roadless.optimizer.core;

/**
 * A gradient contained NaN or an infinity, or the replicas' finite gradients sum to an infinity in
 * float32 (their mean would be infinite); the step was refused and nothing changed.
 */
public final class NonFiniteGradientException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String tensor;
  private final int replica;
  private final long index;

  public NonFiniteGradientException(String tensor, int replica, long index, float value) {
    this(
        "gradient of tensor '"
            + tensor
            + "' from replica "
            + replica
            + " is not finite at element "
            + index
            + " ("
            + value
            + ")",
        tensor,
        replica,
        index);
  }

  private NonFiniteGradientException(String message, String tensor, int replica, long index) {
    super(message);
    this.tensor = tensor;
    this.replica = replica;
    this.index = index;
  }

  /** Every replica's value is finite, but their float32 sum (and so their mean) is not. */
  static NonFiniteGradientException meanOverflows(String tensor, int replicas, long index) {
    return new NonFiniteGradientException(
        "the "
            + replicas
            + " replicas' gradients of tensor '"
            + tensor
            + "' are finite at element "
            + index
            + " but their float32 sum overflows",
        tensor,
        -1,
        index);
  }

  /** The offending tensor's name. */
  public String tensor() {
    return tensor;
  }

  /**
   * The offending replica (0-based, in the order the gradients were given), or -1 when every
   * replica's value is finite and their sum overflows.
   */
  public int replica() {
    return replica;
  }

  /** The first non-finite element's flat row-major index. */
  public long index() {
    return index;
  }
}
