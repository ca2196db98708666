package dev.roadless.trainer.data;

/**
 * A batch of examples: {@code inputs} row-major {@code [size, ...example shape]} float32, and
 * {@code labels} class indices.
 */
public record Batch(float[] inputs, int[] labels, int size) {
  public Batch {
    if (size < 1 || labels.length != size || inputs.length % size != 0) {
      throw new IllegalArgumentException(
          "batch of "
              + size
              + " with "
              + labels.length
              + " labels and "
              + inputs.length
              + " values");
    }
  }
}
