package dev.roadless.checkpoint.server;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * At most {@code limit} calls of one kind at once (downloads, state transfers); one more is refused
 * at once with RESOURCE_EXHAUSTED (CONCURRENCY_LIMIT, {@code limit}) rather than queued, so the
 * memory they hold stays bounded however many clients stall.
 */
final class CallLimit {
  private final String what;
  private final int limit;
  private final Semaphore permits;

  CallLimit(String what, int limit) {
    if (limit < 1) {
      throw new IllegalArgumentException(what + " limit must be at least 1, got " + limit);
    }
    this.what = what;
    this.limit = limit;
    this.permits = new Semaphore(limit);
  }

  /**
   * A permit, released once by {@link Permit#close}; throws CONCURRENCY_LIMIT when none is free.
   */
  Permit acquire() {
    if (!permits.tryAcquire()) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_CONCURRENCY_LIMIT,
              limit + " " + what + " are running, the most this server runs at once; retry later")
          .with("limit", limit)
          .build();
    }
    return new Permit();
  }

  /** Permits in use (for tests and metrics). */
  int inUse() {
    return limit - permits.availablePermits();
  }

  /** One call's permit; closing it more than once releases it once. */
  final class Permit implements AutoCloseable {
    private final AtomicBoolean released = new AtomicBoolean();

    @Override
    public void close() {
      if (released.compareAndSet(false, true)) {
        permits.release();
      }
    }
  }
}
