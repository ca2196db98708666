package dev.roadless.optimizer.run;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;

/**
 * Futures waiting for a run to reach a step (GetParameters with min_step, Train's answers). Not
 * thread-safe: the run calls it under its lock, and completes futures after collecting them, so a
 * waiter's continuation never runs inside this map.
 */
final class StepWaiters {
  private final TreeMap<Long, CompletableFuture<Long>> waiters = new TreeMap<>();

  /** A future for {@code minStep}, shared by every caller waiting for the same step. */
  CompletableFuture<Long> await(long minStep) {
    return waiters.computeIfAbsent(minStep, s -> new CompletableFuture<>());
  }

  /** Removes and returns the futures that {@code step} satisfies; complete them outside. */
  List<CompletableFuture<Long>> reached(long step) {
    List<CompletableFuture<Long>> ready = new ArrayList<>();
    while (!waiters.isEmpty() && waiters.firstKey() <= step) {
      ready.add(waiters.pollFirstEntry().getValue());
    }
    return ready;
  }

  /** Removes and returns every future. */
  List<CompletableFuture<Long>> all() {
    List<CompletableFuture<Long>> out = new ArrayList<>(waiters.values());
    waiters.clear();
    return out;
  }
}
