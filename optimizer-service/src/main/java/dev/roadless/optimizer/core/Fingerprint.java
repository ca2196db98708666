package dev.roadless.optimizer.core;

/**
 * A 64-bit fingerprint of a gradient's float32 values, to tell a re-sent push from a different one.
 * Per tensor it keeps two sums over the raw bits, plain and weighted by the element index (modulo
 * 2^64), so it depends on every value and its place but not on how the tensor was cut into chunks
 * or in which order they came. Not cryptographic: it catches a client that sends another gradient
 * by mistake, not one that forges a collision. Not thread-safe.
 */
public final class Fingerprint {
  private final long[] sum;
  private final long[] weighted;

  public Fingerprint(int tensors) {
    sum = new long[tensors];
    weighted = new long[tensors];
  }

  /** Adds elements {@code [from, to)} of tensor {@code t}, whose values are {@code a[from, to)}. */
  public void add(int t, float[] a, int from, int to) {
    addAt(t, a, from, to, from);
  }

  /**
   * Adds elements {@code [at, at + to - from)} of tensor {@code t}, whose values are {@code a[from,
   * to)} (a chunk decoded into a scratch array).
   */
  public void addAt(int t, float[] a, int from, int to, long at) {
    long s1 = 0;
    long s2 = 0;
    for (int i = from; i < to; i++) {
      s1 += Float.floatToRawIntBits(a[i]) & 0xffffffffL;
      s2 += s1; // sum of (to - i) * bits_i
    }
    sum[t] += s1;
    weighted[t] += (at - from) * s1 + to * s1 - s2; // sum of (at - from + i) * bits_i
  }

  /** The fingerprint of everything added; never 0 (0 stands for "unknown" to the callers). */
  public long value() {
    long h = 0;
    for (int t = 0; t < sum.length; t++) {
      h += mix(sum[t] + 0x9e3779b97f4a7c15L * (t + 1)) ^ mix(weighted[t] - t);
    }
    return h == 0 ? 1 : h;
  }

  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }
}
