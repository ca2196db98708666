package dev.roadless.optimizer.shard;

import dev.roadless.common.config.Settings;
import java.util.ArrayList;
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
   * The three settings, shared by every program that reaches sharded runs.
   *
   * @param minShards the least S accepted (0 where 0 and 1 both mean unsharded)
   * @param listReplaces what else the explicit list replaces, for its help text ("" for nothing)
   */
  public static List<Settings.Key> keys(int minShards, String listReplaces) {
    return List.of(
        Settings.Key.integer(
            "optimizer-shards",
            Integer.toString(Math.max(minShards, 0)),
            minShards,
            1024,
            "sharded runs: S, the optimizer shards at optimizer-shard-target; 0 or 1: unsharded"),
        Settings.Key.text(
            "optimizer-shard-target",
            STATEFUL_SET,
            "shard i's target, {shard} replaced by i (a StatefulSet pod's ordinal)"),
        Settings.Key.text(
            "optimizer-shard-targets",
            "",
            "the shards' targets in shard order, comma-separated (replaces the two above"
                + listReplaces
                + ")"));
  }

  /** {@code own} followed by {@link #keys}. */
  public static List<Settings.Key> with(
      List<Settings.Key> own, int minShards, String listReplaces) {
    List<Settings.Key> all = new ArrayList<>(own);
    all.addAll(keys(minShards, listReplaces));
    return List.copyOf(all);
  }

  /** {@link #resolve} of the three settings {@link #keys} declares. */
  public static List<String> from(Settings s) {
    return resolve(
        s.integer("optimizer-shards"),
        s.text("optimizer-shard-target"),
        s.text("optimizer-shard-targets"));
  }

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
