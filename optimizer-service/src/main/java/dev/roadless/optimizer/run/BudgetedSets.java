package dev.roadless.optimizer.run;

import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Recycled sets of float arrays (one array per tensor) whose memory is admitted against the
 * server's {@link MemoryBudget}: the first {@code reserved} sets were admitted with the run, each
 * set beyond them is admitted when it is made and given back when it is dropped. Lock-free, so a
 * push can take a set before it enters the run's lock.
 */
final class BudgetedSets {
  private final long[] sizes;
  private final long setBytes;
  private final int keep;
  private final int reserved;
  private final MemoryBudget budget;
  private final String what;
  private final ConcurrentLinkedDeque<float[][]> free = new ConcurrentLinkedDeque<>();
  private final ConcurrentLinkedDeque<MemoryBudget.Grant> extra = new ConcurrentLinkedDeque<>();
  private final AtomicInteger live = new AtomicInteger();

  /**
   * @param keep how many unused sets to keep for reuse
   * @param reserved how many sets the run's own admission already covers
   */
  BudgetedSets(long[] sizes, int keep, int reserved, MemoryBudget budget, String what) {
    this.sizes = sizes;
    this.setBytes = bytesPerSet(sizes);
    this.keep = keep;
    this.reserved = reserved;
    this.budget = budget;
    this.what = what;
  }

  static long bytesPerSet(long[] sizes) {
    long n = 0;
    for (long s : sizes) {
      n += s;
    }
    return 4 * n;
  }

  /**
   * A set, recycled or new; its contents are whatever was there before.
   *
   * @param mayRefuse false where a refusal would tear a step apart: the set is then counted against
   *     the budget even beyond its limit
   * @throws dev.roadless.common.error.RoadlessException MEMORY_BUDGET_EXCEEDED
   */
  float[][] acquire(boolean mayRefuse) {
    float[][] b = free.poll();
    if (b != null) {
      return b;
    }
    if (live.incrementAndGet() > reserved) {
      try {
        extra.push(mayRefuse ? budget.admit(setBytes, what) : budget.overdraw(setBytes));
      } catch (RuntimeException e) {
        live.decrementAndGet();
        throw e;
      }
    }
    float[][] fresh = new float[sizes.length][];
    for (int t = 0; t < fresh.length; t++) {
      fresh[t] = new float[(int) sizes[t]];
    }
    return fresh;
  }

  /** Takes a set back (null is ignored): kept for reuse, or dropped and its bytes given back. */
  void release(float[][] set) {
    if (set == null) {
      return;
    }
    if (free.size() < keep) {
      free.push(set);
      return;
    }
    live.decrementAndGet();
    MemoryBudget.Grant g = extra.poll();
    if (g != null) {
      g.close();
    }
  }

  /** The run is gone: every set beyond the reservation is given back now. */
  void close() {
    free.clear();
    for (MemoryBudget.Grant g; (g = extra.poll()) != null; ) {
      g.close();
    }
  }
}
