package dev.roadless.optimizer.core;

/**
 * One step's fused per-element update for one group, with its float32 coefficients fixed. A single
 * pass over the gradient, z, x and the moments: y (old), the base update of z, then x, and the new
 * y.
 */
interface Kernel {
  /**
   * Updates elements {@code [from, to)} of {@code t}. The mean gradient of element i is {@code g[i
   * + gShift]}; the new y of element i goes to {@code y[i + yShift]}.
   */
  void apply(TensorBuffers t, float[] g, int gShift, float[] y, int yShift, int from, int to);
}
