package dev.roadless.optimizer.shard;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.function.IntFunction;

/**
 * One call per shard, all at once: every caller of a sharded run (the client, the checkpoint
 * service's state transfers) waits for every shard's answer, so no call is left running behind a
 * failure, and then throws the first failure as it was thrown.
 */
public final class ShardCalls {
  private ShardCalls() {}

  /** Runs {@code call} for shards 0 to {@code shards - 1} on {@code executor}; one shard inline. */
  public static <T> List<T> onEvery(int shards, IntFunction<T> call, Executor executor) {
    if (shards == 1) {
      return List.of(call.apply(0));
    }
    List<CompletableFuture<T>> futures = new ArrayList<>();
    for (int s = 0; s < shards; s++) {
      int shard = s;
      futures.add(CompletableFuture.supplyAsync(() -> call.apply(shard), executor));
    }
    return join(futures);
  }

  /** Waits for every future (none is left running), then throws the first failure unwrapped. */
  public static <T> List<T> join(List<CompletableFuture<T>> futures) {
    List<T> out = new ArrayList<>();
    RuntimeException failure = null;
    for (CompletableFuture<T> f : futures) {
      try {
        out.add(f.join());
      } catch (CompletionException e) {
        if (failure == null) {
          failure = e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
    return out;
  }
}
