package dev.roadless.trainer.service;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The shard keys read as the checkpoint service and the load test read them (ShardTargets). */
class TrainerConfigShardsTest {
  @Test
  void shards_patternListOrNone() {
    assertEquals(
        List.of(),
        TrainerConfig.from(new String[] {"--plaintext=true"}, Map.of()).optimizerShardTargets());
    assertEquals(
        List.of("dns:///optimizer-0.optimizer:50051", "dns:///optimizer-1.optimizer:50051"),
        TrainerConfig.from(
                new String[] {"--plaintext=true"}, Map.of("ROADLESS_OPTIMIZER_SHARDS", "2"))
            .optimizerShardTargets());
    assertEquals(
        List.of("127.0.0.1:1", "127.0.0.1:2"),
        TrainerConfig.from(
                new String[] {
                  "--plaintext=true", "--optimizer-shard-targets=127.0.0.1:1, 127.0.0.1:2"
                },
                Map.of())
            .optimizerShardTargets());
  }
}
