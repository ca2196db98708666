package dev.roadless.optimizer.run;

import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * Gradient arrays for pushes and means, recycled: a 10M-parameter push would otherwise allocate
 * (and zero) 40 MB every time. Lock-free, so a push can take a set before it enters the run's lock.
 */
final class GradientBuffers {
  private final long[] sizes;
  private final int keep;
  private final ConcurrentLinkedDeque<float[][]> free = new ConcurrentLinkedDeque<>();

  /**
   * @param keep how many sets to keep at most (R + 1: every replica's pending push and a mean)
   */
  GradientBuffers(long[] sizes, int keep) {
    this.sizes = sizes;
    this.keep = keep;
  }

  /** A set of arrays, recycled or new; its contents are whatever was there before. */
  float[][] acquire() {
    float[][] b = free.poll();
    if (b != null) {
      return b;
    }
    float[][] fresh = new float[sizes.length][];
    for (int t = 0; t < fresh.length; t++) {
      fresh[t] = new float[(int) sizes[t]];
    }
    return fresh;
  }

  /** Takes a set back (null is ignored). */
  void release(float[][] buffers) {
    if (buffers != null && free.size() < keep) {
      free.push(buffers);
    }
  }
}
