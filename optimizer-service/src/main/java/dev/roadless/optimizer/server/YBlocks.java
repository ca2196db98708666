package dev.roadless.optimizer.server;

import dev.roadless.optimizer.run.MemoryBudget;
import dev.roadless.optimizer.wire.FloatChunkOut;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Blocks of early y ({@link dev.roadless.optimizer.run.EarlyParameters}): each block is copied once
 * into a recycled array that every subscribed stream sends from ({@link FloatChunkOut}, serialized
 * straight from the array), and the array comes back when the last stream has written or dropped
 * it. No per-step allocation proportional to the parameters: the arrays are reused step after step.
 * Every array, in flight or kept, is charged to the server's memory budget (an overdraw: a block is
 * never refused, as the y sets beyond a run's reserved one are not), and its bytes go back when the
 * pool lets the array go.
 */
final class YBlocks {
  /**
   * Unused arrays kept for reuse, at most 64 MiB of 256 KiB blocks. A replica pushes again only
   * after its answer, so a run has at most one step's early y in flight; what a lagging socket
   * holds beyond the kept blocks is allocated (and charged) afresh and let go afterwards.
   */
  private static final int KEEP = 256;

  private static final int BLOCK = 1 << 16;

  private final MemoryBudget budget;
  private final ConcurrentLinkedDeque<Slab> free = new ConcurrentLinkedDeque<>();

  YBlocks(MemoryBudget budget) {
    this.budget = budget;
  }

  /** An array and the budget's grant for it. */
  private record Slab(float[] values, MemoryBudget.Grant grant) {}

  /** One block of y, held by its encoder and by every stream that queued it. */
  final class Block {
    private final String name;
    private final long offset;
    private final Slab slab;
    private final int count;
    private final AtomicInteger holds = new AtomicInteger(1);

    private Block(String name, long offset, Slab slab, int count) {
      this.name = name;
      this.offset = offset;
      this.slab = slab;
      this.count = count;
    }

    /** A message for one more stream; the block stays until that stream lets go of it. */
    FloatChunkOut message() {
      holds.incrementAndGet();
      return new FloatChunkOut(name, offset, slab.values(), 0, count, this::release);
    }

    /** Drops one hold; the last returns the array. */
    void release() {
      if (holds.decrementAndGet() != 0) {
        return;
      }
      if (slab.values().length == BLOCK && free.size() < KEEP) {
        free.push(slab);
      } else {
        slab.grant().close();
      }
    }
  }

  /** Copies {@code y[0, n)}, elements {@code [offset, offset + n)} of tensor {@code name}. */
  Block copy(String name, long offset, float[] y, int n) {
    Slab slab = n <= BLOCK ? free.poll() : null;
    if (slab == null) {
      int length = Math.max(n, BLOCK);
      slab = new Slab(new float[length], budget.overdraw(4L * length));
    }
    System.arraycopy(y, 0, slab.values(), 0, n);
    return new Block(name, offset, slab, n);
  }
}
