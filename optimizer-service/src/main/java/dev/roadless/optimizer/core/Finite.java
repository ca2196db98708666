package dev.roadless.optimizer.core;

/**
 * The finiteness scan the core and the server share (gradients, initial values, imported state).
 */
public final class Finite {
  private Finite() {}

  /**
   * True when no element is NaN or infinite: {@code a - a} is 0 for a finite value and NaN
   * otherwise, and a sum of those stays 0 only if all are 0. Eight independent sums, because a
   * single loop-carried reduction runs at half the memory bandwidth on JDK 17.
   */
  public static boolean all(float[] a, int from, int to) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int i = from;
    for (; i + 8 <= to; i += 8) {
      s0 += a[i] - a[i];
      s1 += a[i + 1] - a[i + 1];
      s2 += a[i + 2] - a[i + 2];
      s3 += a[i + 3] - a[i + 3];
      s4 += a[i + 4] - a[i + 4];
      s5 += a[i + 5] - a[i + 5];
      s6 += a[i + 6] - a[i + 6];
      s7 += a[i + 7] - a[i + 7];
    }
    for (; i < to; i++) {
      s0 += a[i] - a[i];
    }
    return (s0 + s1 + s2 + s3) + (s4 + s5 + s6 + s7) == 0;
  }
}
