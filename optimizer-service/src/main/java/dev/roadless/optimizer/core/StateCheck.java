package dev.roadless.optimizer.core;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The check that a step left the state finite: each chunk's z, x and moments are scanned right
 * after the kernel wrote them, while they are still in the core's cache, and the first bad chunk is
 * remembered. Finite z and x make y finite too (y is their convex combination), so y needs no scan.
 */
final class StateCheck {
  private final AtomicInteger firstBadChunk = new AtomicInteger(Integer.MAX_VALUE);

  /** Scans chunk {@code c}'s state ({@code [from, to)} of {@code b}); thread-safe. */
  void scan(int c, TensorBuffers b, int from, int to) {
    if (!(finite(b.z, from, to) && finite(b.x, from, to))
        || !(finite(b.v, from, to) && finite(b.m, from, to))) {
      firstBadChunk.accumulateAndGet(c, Math::min);
    }
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
