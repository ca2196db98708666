package dev.roadless.optimizer.core;

/**
 * The data-parallel mean gradient {@code (g_0 + g_1 + ... + g_{R-1}) / R}: summed left to right in
 * replica order in float32, then divided by R in float32, so it never depends on arrival order and
 * R = 1 gives exactly g. Computed per chunk into an L2-resident scratch buffer right before the
 * kernel reads it, so it costs no extra pass over main memory.
 */
final class ReplicaMean {
  private ReplicaMean() {}

  /** Writes the mean of elements [from, to) to {@code out[0 .. to-from)}. */
  static void into(float[][] replicas, int from, int to, float[] out) {
    int n = to - from;
    System.arraycopy(replicas[0], from, out, 0, n);
    for (int r = 1; r < replicas.length; r++) {
      float[] g = replicas[r];
      for (int j = 0; j < n; j++) {
        out[j] += g[from + j];
      }
    }
    float count = replicas.length;
    for (int j = 0; j < n; j++) {
      out[j] /= count;
    }
  }
}
