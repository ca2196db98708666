package dev.roadless.checkpoint.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The optimizer shards of sharded runs: none, S from the StatefulSet pattern, or a list. */
class ShardTargetsConfigTest {
  /** Without TLS files a service must be told it serves plaintext. */
  private static final String[] PLAIN = {"--plaintext=true"};

  @Test
  void from_noShards_runsAreNotSharded() {
    assertEquals(List.of(), CheckpointConfig.from(PLAIN, Map.of()).optimizerShardTargets());
    assertEquals(
        List.of(),
        CheckpointConfig.from(PLAIN, Map.of("ROADLESS_OPTIMIZER_SHARDS", "1"))
            .optimizerShardTargets());
  }

  @Test
  void from_shardCount_targetsThePodsByOrdinal() {
    CheckpointConfig c = CheckpointConfig.from(PLAIN, Map.of("ROADLESS_OPTIMIZER_SHARDS", "3"));
    assertEquals(
        List.of(
            "dns:///optimizer-0.optimizer:50051",
            "dns:///optimizer-1.optimizer:50051",
            "dns:///optimizer-2.optimizer:50051"),
        c.optimizerShardTargets());
  }

  @Test
  void from_explicitList_wins() {
    CheckpointConfig c =
        CheckpointConfig.from(
            new String[] {
              "--plaintext=true", "--optimizer-shards=3", "--optimizer-shard-targets=a:1, b:2"
            },
            Map.of());
    assertEquals(List.of("a:1", "b:2"), c.optimizerShardTargets());
  }

  @Test
  void from_patternWithoutPlaceholder_refused() {
    assertThrows(
        IllegalArgumentException.class,
        () ->
            CheckpointConfig.from(
                new String[] {
                  "--plaintext=true", "--optimizer-shards=2", "--optimizer-shard-target=host:1"
                },
                Map.of()));
  }
}
