package dev.roadless.optimizer.core;

/**
 * One tensor's float32 state: z and x always, the base optimizer's moments where the variant keeps
 * them ({@code v} = {@code exp_avg_sq}; {@code m} = {@code exp_avg} or the SGD momentum buffer),
 * else null.
 */
final class TensorBuffers {
  final float[] z;
  final float[] x;
  final float[] v;
  final float[] m;

  TensorBuffers(float[] z, float[] x, float[] v, float[] m) {
    this.z = z;
    this.x = x;
    this.v = v;
    this.m = m;
  }

  static TensorBuffers allocate(int n, boolean withV, boolean withM) {
    return new TensorBuffers(
        new float[n], new float[n], withV ? new float[n] : null, withM ? new float[n] : null);
  }

  /** Zeroes the moments (a fresh start from initial values). */
  void clearMoments() {
    if (v != null) {
      java.util.Arrays.fill(v, 0f);
    }
    if (m != null) {
      java.util.Arrays.fill(m, 0f);
    }
  }

  int length() {
    return z.length;
  }
}
