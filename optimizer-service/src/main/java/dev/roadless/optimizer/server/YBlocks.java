package dev.roadless.optimizer.server;

import dev.roadless.optimizer.wire.FloatChunkOut;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Blocks of early y ({@link dev.roadless.optimizer.run.EarlyParameters}): each block is copied once
 * into a recycled array that every subscribed stream sends from ({@link FloatChunkOut}, serialized
 * straight from the array), and the array comes back when the last stream has written or dropped
 * it. No per-step allocation proportional to the parameters: the arrays are reused step after step.
 */
final class YBlocks {
  /**
   * Unused arrays kept for reuse, at most 1 GiB of 256 KiB blocks. The pool holds at most what was
   * in flight at once: a replica pushes again only after its answer, so a run has at most one
   * step's y in flight (its early y, queued while the socket catches up), one y set. Fewer would
   * allocate afresh every step that the socket lags.
   */
  private static final int KEEP = 4096;

  private final ConcurrentLinkedDeque<float[]> free = new ConcurrentLinkedDeque<>();

  /** One block of y, held by its encoder and by every stream that queued it. */
  final class Block {
    private final String name;
    private final long offset;
    private final float[] values;
    private final int count;
    private final AtomicInteger holds = new AtomicInteger(1);

    private Block(String name, long offset, float[] values, int count) {
      this.name = name;
      this.offset = offset;
      this.values = values;
      this.count = count;
    }

    /** A message for one more stream; the block stays until that stream lets go of it. */
    FloatChunkOut message() {
      holds.incrementAndGet();
      return new FloatChunkOut(name, offset, values, 0, count, this::release);
    }

    /** Drops one hold; the last returns the array. */
    void release() {
      if (holds.decrementAndGet() == 0 && values.length >= count && free.size() < KEEP) {
        free.push(values);
      }
    }
  }

  /** Copies {@code y[0, n)}, elements {@code [offset, offset + n)} of tensor {@code name}. */
  Block copy(String name, long offset, float[] y, int n) {
    float[] a = free.poll();
    if (a == null || a.length < n) {
      a = new float[Math.max(n, 1 << 16)];
    }
    System.arraycopy(y, 0, a, 0, n);
    return new Block(name, offset, a, n);
  }
}
