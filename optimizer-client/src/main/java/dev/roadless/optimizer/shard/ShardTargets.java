package dev.roadless.optimizer.shard;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Where a sharded run's shards are, as every service configures it: {@code optimizer-shards} (S)
 * with {@code optimizer-shard-target}, a target pattern whose {@code {shard}} is replaced by the
 * shard's index (on Kubernetes, the StatefulSet pod's ordinal: {@code
 * dns:///optimizer-{shard}.optimizer:50051}), or {@code optimizer-shard-targets}, an explicit
 * comma-separated list in shard order (local runs, where the shards are ports).
 */
public final class ShardTargets {
  /** The pattern of the optimizer StatefulSet's pods behind its headless Service. */
  public static final String STATEFUL_SET = "dns:///optimizer-{shard}.optimizer:50051";

  private ShardTargets() {}

  /**
   * The shards' targets in shard order: the list when it is not empty, else S targets from the
   * pattern when S is at least 2, else none (the runs are not sharded).
   *
   * @throws IllegalArgumentException if S is at least 2 and the pattern has no {@code {shard}}
   */
  public static List<String> resolve(int shards, String pattern, String list) {
    List<String> listed =
        Arrays.stream(list.split(",")).map(String::trim).filter(t -> !t.isEmpty()).toList();
    if (!listed.isEmpty() || shards < 2) {
      return listed;
    }
    if (!pattern.contains("{shard}")) {
      throw new IllegalArgumentException(
          "optimizer-shard-target must contain {shard}, got '" + pattern + "'");
    }
    return IntStream.range(0, shards)
        .mapToObj(i -> pattern.replace("{shard}", Integer.toString(i)))
        .toList();
  }
}
