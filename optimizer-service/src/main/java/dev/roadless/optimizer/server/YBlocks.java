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

  /** Arrays the pool has made and not let go: kept or in flight. */
  private final AtomicInteger owned = new AtomicInteger();

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

    /**
     * The block as one stream's queued source: its message once, and when the stream is cancelled
     * before writing it ({@link OutboundPump} closes the dropped sources), the hold back, so the
     * array returns to the pool and its bytes to the budget.
     */
    Queued queued() {
      holds.incrementAndGet();
      return new Queued(this);
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
        owned.decrementAndGet();
      }
    }
  }

  /** One block's message for one stream, not yet written. */
  static final class Queued implements java.util.Iterator<Object>, AutoCloseable {
    private Block block;

    private Queued(Block block) {
      this.block = block;
    }

    @Override
    public boolean hasNext() {
      return block != null;
    }

    @Override
    public Object next() {
      if (block == null) {
        throw new java.util.NoSuchElementException();
      }
      Block b = block;
      block = null;
      // The hold taken by queued() passes to the message: gRPC gives it back once written.
      return new FloatChunkOut(b.name, b.offset, b.slab.values(), 0, b.count, b::release);
    }

    @Override
    public void close() {
      if (block != null) {
        block.release();
        block = null;
      }
    }
  }

  /**
   * Makes the pool own at least the arrays of one whole step's early y of a run whose tensors have
   * {@code sizes} elements (at most {@link #KEEP}), allocating the missing ones now. Called for
   * every push that asks for early parameters; after the run's first, it only compares a count.
   *
   * <p>Without it the pool grew one burst at a time, whenever a lagging socket held more blocks
   * than ever before, well into training: those late arrays outlived a young collection and were
   * copied into old-generation pages the process had never touched, tens to hundreds of minor page
   * faults per step (docs/BENCHMARKS.md, issue 15). Allocated together at the first push, they are
   * promoted once, while the run warms up. The memory is the pool's bound for such a run either
   * way: one step's early y, which a slow enough socket holds at once.
   */
  void reserve(long[] sizes) {
    long blocks = 0;
    for (long n : sizes) {
      blocks += (n + BLOCK - 1) / BLOCK;
    }
    int want = (int) Math.min(blocks, KEEP);
    for (int have = owned.get(); have < want; have = owned.get()) {
      if (owned.compareAndSet(have, have + 1)) {
        free.push(newSlab(BLOCK));
      }
    }
  }

  private Slab newSlab(int length) {
    return new Slab(new float[length], budget.overdraw(4L * length));
  }

  /** Copies {@code y[0, n)}, elements {@code [offset, offset + n)} of tensor {@code name}. */
  Block copy(String name, long offset, float[] y, int n) {
    Slab slab = n <= BLOCK ? free.poll() : null;
    if (slab == null) {
      owned.incrementAndGet();
      slab = newSlab(Math.max(n, BLOCK));
    }
    System.arraycopy(y, 0, slab.values(), 0, n);
    return new Block(name, offset, slab, n);
  }
}
