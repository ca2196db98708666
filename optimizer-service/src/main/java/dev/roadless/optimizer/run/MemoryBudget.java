package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The server's memory budget: every allocation that grows with a run's size (its state, push
 * buffers, y sets, state copies for export and snapshots, shared-memory segments) is admitted here
 * before it is made. Over the limit the call gets RESOURCE_EXHAUSTED (MEMORY_BUDGET_EXCEEDED) and
 * nothing is allocated, so one run's size or one client's streams cannot take memory another run
 * needs. Thread-safe and lock-free.
 */
public final class MemoryBudget {
  private final String name;
  private final long limit;
  private final AtomicLong used = new AtomicLong();

  /**
   * @param name what the budget covers, for messages ("heap", "shared memory")
   * @param limit bytes; {@link Long#MAX_VALUE} for no limit
   */
  public MemoryBudget(String name, long limit) {
    if (limit <= 0) {
      throw new IllegalArgumentException("a memory budget must be positive, got " + limit);
    }
    this.name = name;
    this.limit = limit;
  }

  /** A budget that admits everything (tools and tests that do not bound memory). */
  public static MemoryBudget unlimited() {
    return new MemoryBudget("unlimited", Long.MAX_VALUE);
  }

  public long limit() {
    return limit;
  }

  public long used() {
    return used.get();
  }

  /**
   * Admits {@code bytes} for {@code what}; the grant gives them back once, when closed.
   *
   * @throws RoadlessException MEMORY_BUDGET_EXCEEDED when they do not fit
   */
  public Grant admit(long bytes, String what) {
    if (bytes < 0) {
      throw new IllegalArgumentException("negative bytes: " + bytes);
    }
    while (true) {
      long now = used.get();
      if (bytes > limit - now) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_MEMORY_BUDGET_EXCEEDED,
                what
                    + " needs "
                    + bytes
                    + " bytes of the server's "
                    + name
                    + " budget; "
                    + Math.max(0, limit - now)
                    + " of "
                    + limit
                    + " are free")
            .with("limit", limit)
            .with("requested", bytes)
            .with("available", Math.max(0, limit - now))
            .build();
      }
      if (used.compareAndSet(now, now + bytes)) {
        return new Grant(bytes);
      }
    }
  }

  /**
   * Counts {@code bytes} even past the limit, for the few allocations that must not fail half-way
   * through a step (a y set for a slow reader of the previous step); later admissions see them.
   */
  public Grant overdraw(long bytes) {
    used.addAndGet(bytes);
    return new Grant(bytes);
  }

  /** Bytes admitted from a budget, given back once by {@link #close}. */
  public final class Grant implements AutoCloseable {
    private final long bytes;
    private final AtomicBoolean open = new AtomicBoolean(true);

    private Grant(long bytes) {
      this.bytes = bytes;
    }

    public long bytes() {
      return bytes;
    }

    @Override
    public void close() {
      if (open.compareAndSet(true, false)) {
        used.addAndGet(-bytes);
      }
    }
  }
}
