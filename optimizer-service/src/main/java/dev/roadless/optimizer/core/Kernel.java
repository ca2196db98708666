package dev.roadless.optimizer.core;

/**
 * One step's fused per-element update for one group, with its float32 coefficients fixed. A single
 * pass over the gradient, z, x and the moments: y (old), the base update of z, then x, and the new
 * y.
 *
 * <p>Every array is indexed by the same {@code i}: C2 only vectorizes a loop whose arrays it can
 * prove independent, and arrays indexed with different offsets might overlap.
 */
interface Kernel {
  /**
   * Updates elements {@code [from, to)} of {@code t} with the mean gradient {@code g[i]}.
   *
   * @param y receives the new y of each element, or null when not wanted
   */
  void apply(TensorBuffers t, float[] g, float[] y, int from, int to);

  /**
   * As {@link #apply}, then whether the elements' new state (z, x and the moments) is finite: by
   * default a separate scan of the block ({@link StateCheck#finite}), which {@link ChunkStepper}
   * runs while the block is still in cache. Kernels that can fold the check into their own pass
   * override this ({@link VectorKernels}); the state written is the same either way.
   */
  default boolean applyChecked(TensorBuffers t, float[] g, float[] y, int from, int to) {
    apply(t, g, y, from, to);
    return StateCheck.finite(t, from, to);
  }
}
