package dev.roadless.checkpoint.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.checkpoint.store.Retention;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Flags, environment variables, defaults and range checks. */
class CheckpointConfigTest {
  @Test
  void from_noSettings_documentedDefaults() {
    CheckpointConfig c = CheckpointConfig.from(new String[] {"--plaintext=true"}, Map.of());
    assertEquals(50053, c.port());
    assertEquals(9464, c.metricsPort());
    assertEquals(Path.of("checkpoints"), c.checkpointDir());
    assertEquals("127.0.0.1:50051", c.optimizerTarget());
    assertEquals(List.of(), c.trainerTargets());
    assertEquals(new Retention(0, Retention.BestMetric.NONE), c.retention());
    assertEquals(Duration.ofSeconds(600), c.clientOptions().waitDeadline());
  }

  @Test
  void from_envAndFlags_flagsWin() {
    CheckpointConfig c =
        CheckpointConfig.from(
            new String[] {
              "--keep-last=3", "--trainer-targets=t0:50052, t1:50052", "--plaintext=true"
            },
            Map.of(
                "ROADLESS_CHECKPOINT_DIR", "/data/ckpt",
                "ROADLESS_KEEP_LAST", "9",
                "ROADLESS_KEEP_BEST_METRIC", "accuracy"));
    assertEquals(Path.of("/data/ckpt"), c.checkpointDir());
    assertEquals(List.of("t0:50052", "t1:50052"), c.trainerTargets());
    assertEquals(new Retention(3, Retention.BestMetric.ACCURACY), c.retention());
  }

  @Test
  void from_outOfRangeOrUnknown_refusedNamingTheKey() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> CheckpointConfig.from(new String[] {"--keep-last=-1"}, Map.of()));
    assertEquals(true, e.getMessage().contains("ROADLESS_KEEP_LAST"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> CheckpointConfig.from(new String[] {"--keep-best-metric=f1"}, Map.of()));
    assertThrows(
        IllegalArgumentException.class,
        () -> CheckpointConfig.from(new String[] {"--checkpoint-dir="}, Map.of()));
  }

  @Test
  void from_noTlsFilesNorPlaintext_refusedNamingTheKeys() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> CheckpointConfig.from(new String[0], Map.of()));
    assertEquals(true, e.getMessage().contains("ROADLESS_TLS_CERT"), e.getMessage());
  }
}
