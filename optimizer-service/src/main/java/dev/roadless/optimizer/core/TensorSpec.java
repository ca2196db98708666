package dev.roadless.optimizer.core;

import java.util.Arrays;
import java.util.Objects;

/**
 * A named float32 parameter tensor and its shape (row-major). A scalar has the empty shape.
 *
 * @param name unique within an optimizer, non-empty
 * @param shape every dimension >= 1; the array is copied on the way in and out
 */
public record TensorSpec(String name, int[] shape) {
  /** Largest element count a single Java float array can hold safely. */
  public static final long MAX_NUMEL = Integer.MAX_VALUE - 8;

  /**
   * @throws IllegalArgumentException on an empty name, a dimension below 1, or more than {@link
   *     #MAX_NUMEL} elements
   */
  public TensorSpec {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(shape, "shape");
    if (name.isEmpty()) {
      throw new IllegalArgumentException("tensor name must not be empty");
    }
    shape = shape.clone();
    long n = 1;
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 1) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': dimension " + i + " must be >= 1, got " + shape[i]);
      }
      n *= shape[i];
      if (n > MAX_NUMEL) {
        throw new IllegalArgumentException(
            "tensor '"
                + name
                + "' has more than "
                + MAX_NUMEL
                + " elements (shape "
                + Arrays.toString(shape)
                + "); split it");
      }
    }
  }

  /** Convenience factory: {@code TensorSpec.of("w", 3, 4)}. */
  public static TensorSpec of(String name, int... shape) {
    return new TensorSpec(name, shape);
  }

  @Override
  public int[] shape() {
    return shape.clone();
  }

  /** Number of elements, the product of the dimensions (1 for a scalar). */
  public long numel() {
    long n = 1;
    for (int d : shape) {
      n *= d;
    }
    return n;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorSpec t && name.equals(t.name) && Arrays.equals(shape, t.shape);
  }

  @Override
  public int hashCode() {
    return 31 * name.hashCode() + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + Arrays.toString(shape);
  }
}
