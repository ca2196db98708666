package dev.roadless.optimizer.core;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The check that a step left the state finite, and the first bad chunk found. Each block's new z, x
 * and moments are checked where the kernel writes them ({@link Kernel#applyChecked}): the AdamW-SF
 * and SGD-SF kernels fold the check into their own pass ({@link VectorKernels}); every other kernel
 * (and all of them without the vector module) has its block scanned right after it was written,
 * while it is still in the core's cache.
 *
 * <p>Which arrays must be checked. y needs no check: it is {@code fma(newZ, z, x*newX)} with both
 * coefficients in [0, 1], so it is finite whenever z and x are (the product and the fused sum of
 * two finite values below {@code Float.MAX_VALUE} weighted by coefficients summing to about 1
 * cannot overflow, and their rounding can only reach infinity from a value already within one ulp
 * of {@code Float.MAX_VALUE}). Checking y instead of z and x would not do: y weighs z by {@code 1 -
 * beta}, which may be 0 (beta = 1), and then a non-finite z leaves y finite. z, x and the moments
 * cannot stand in for one another either: an infinite {@code v} (with beta2 = 0.999, {@code (1 -
 * beta2) g^2} of a finite gradient above about 5.8e20 overflows) makes the update {@code g /
 * (sqrt(v) + eps)} zero, so z and x stay finite while v is not, and x can only be finite with a
 * non-finite z when {@code c_k = 0}. So z, x and every moment are checked, and y is not.
 */
final class StateCheck {
  private final AtomicInteger firstBadChunk = new AtomicInteger(Integer.MAX_VALUE);

  /** Scans chunk {@code c}'s state ({@code [from, to)} of {@code b}); thread-safe. */
  void scan(int c, TensorBuffers b, int from, int to) {
    if (!finite(b, from, to)) {
      markBad(c);
    }
  }

  /** Records that chunk {@code c}'s new state is not finite; thread-safe. */
  void markBad(int c) {
    firstBadChunk.accumulateAndGet(c, Math::min);
  }

  /** Whether z, x and the moments of {@code [from, to)} of {@code b} are all finite. */
  static boolean finite(TensorBuffers b, int from, int to) {
    return finite(b.z, from, to)
        && finite(b.x, from, to)
        && finite(b.v, from, to)
        && finite(b.m, from, to);
  }

  /** After every chunk ran: the failure found, or null when the whole state is finite. */
  NonFiniteStateException failure(Layout layout, TensorBuffers[] buffers, long step) {
    int c = firstBadChunk.get();
    if (c == Integer.MAX_VALUE) {
      return null;
    }
    int t = layout.chunkTensor[c];
    TensorBuffers b = buffers[t];
    float[][] slots = {b.z, b.x, b.v, b.m};
    String[] names = {"z", "x", "exp_avg_sq", "exp_avg"};
    for (int i = layout.chunkFrom[c]; i < layout.chunkTo[c]; i++) {
      for (int s = 0; s < slots.length; s++) {
        if (slots[s] != null && !Float.isFinite(slots[s][i])) {
          return new NonFiniteStateException(step, layout.tensors.get(t).name(), i, names[s]);
        }
      }
    }
    throw new IllegalStateException("chunk " + c + " was found non-finite but is finite now");
  }

  private static boolean finite(float[] a, int from, int to) {
    return a == null || Finite.all(a, from, to);
  }
}
