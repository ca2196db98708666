package dev.roadless.trainer.model;

import java.util.Arrays;

/**
 * A named tensor of a model in PyTorch's layout: {@code fc1.weight} is {@code [out, in]}, {@code
 * conv1.weight} {@code [out, in, kh, kw]}; data is row-major float32. An empty shape is a scalar.
 */
public record ModelTensor(String name, int[] shape) {
  public ModelTensor {
    shape = shape.clone();
  }

  /** Number of elements (1 for a scalar). */
  public int size() {
    return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
  }

  @Override
  public int[] shape() {
    return shape.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ModelTensor t && t.name.equals(name) && Arrays.equals(t.shape, shape);
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + Arrays.toString(shape);
  }
}
