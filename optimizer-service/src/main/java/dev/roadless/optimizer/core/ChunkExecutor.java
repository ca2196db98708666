package dev.roadless.optimizer.core;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs indexed tasks on {@code threads - 1} daemon helper threads plus the calling thread, which
 * always takes part, so concurrent callers can never starve each other. Tasks are handed out
 * through an atomic counter; which thread runs a task never affects the numbers because every
 * element is computed on its own.
 */
final class ChunkExecutor implements AutoCloseable {

  /** One indexed task; {@code worker} is in [0, threads) and unique within one run. */
  interface Task {
    void run(int worker, int index);
  }

  /** Each worker owns scratch buffers, so the count is bounded. */
  static final int MAX_THREADS = 256;

  private final int threads;
  private final ExecutorService helpers;
  private volatile boolean closed;

  ChunkExecutor(int threads) {
    if (threads < 1 || threads > MAX_THREADS) {
      throw new IllegalArgumentException(
          "threads must be in [1, " + MAX_THREADS + "], got " + threads);
    }
    this.threads = threads;
    this.helpers =
        threads == 1
            ? null
            : Executors.newFixedThreadPool(
                threads - 1,
                r -> {
                  Thread t = new Thread(r, "schedule-free-kernel");
                  t.setDaemon(true);
                  return t;
                });
  }

  int threads() {
    return threads;
  }

  /** Runs {@code task} for every index in [0, count) and returns when all are done. */
  void run(int count, Task task) {
    if (closed) {
      throw new IllegalStateException("the optimizer was closed");
    }
    int helperCount = helpers == null ? 0 : Math.min(threads - 1, count - 1);
    if (helperCount <= 0) {
      for (int i = 0; i < count; i++) {
        task.run(0, i);
      }
      return;
    }
    AtomicInteger next = new AtomicInteger();
    Future<?>[] futures = new Future<?>[helperCount];
    for (int h = 0; h < helperCount; h++) {
      int worker = h + 1;
      futures[h] = helpers.submit(() -> drain(worker, count, next, task));
    }
    Throwable failure = null;
    try {
      drain(0, count, next, task);
    } catch (RuntimeException | Error e) {
      failure = e;
    }
    failure = awaitAll(futures, failure);
    if (failure instanceof RuntimeException e) {
      throw e;
    }
    if (failure instanceof Error e) {
      throw e;
    }
    if (failure != null) {
      throw new IllegalStateException("kernel task failed", failure);
    }
  }

  private static void drain(int worker, int count, AtomicInteger next, Task task) {
    for (int i = next.getAndIncrement(); i < count; i = next.getAndIncrement()) {
      task.run(worker, i);
    }
  }

  /**
   * Waits for every helper even when interrupted: they write shared state, so returning early would
   * let the caller release its lock while they still run. The interrupt is restored.
   */
  private static Throwable awaitAll(Future<?>[] futures, Throwable failure) {
    boolean interrupted = false;
    for (Future<?> f : futures) {
      while (true) {
        try {
          f.get();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        } catch (ExecutionException e) {
          if (failure == null) {
            failure = e.getCause();
          } else {
            failure.addSuppressed(e.getCause());
          }
          break;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    return failure;
  }

  @Override
  public void close() {
    closed = true;
    if (helpers != null) {
      helpers.shutdown();
    }
  }
}
