package dev.roadless.checkpoint.config;

import dev.roadless.checkpoint.store.Retention;
import dev.roadless.common.config.Settings;
import dev.roadless.common.security.SecurityConfig;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.shard.ShardTargets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Typed configuration of the checkpoint service, from flags ({@code --checkpoint-dir=/data}) or
 * {@code ROADLESS_*} environment variables ({@code ROADLESS_CHECKPOINT_DIR}); flags win. Values are
 * range-checked at start-up.
 *
 * @param trainerTargets the trainer replicas' control addresses, in replica order (may be empty)
 * @param retention keep-last and keep-best-metric
 * @param clientOptions deadlines and retries of calls to the optimizer and the trainers
 * @param optimizerShardTargets the shards of sharded runs, in shard order (empty: the runs are not
 *     sharded); state checkpoints are gathered from and restored onto all of them
 */
public record CheckpointConfig(
    int port,
    Path portFile,
    int metricsPort,
    Path checkpointDir,
    String optimizerTarget,
    List<String> trainerTargets,
    Retention retention,
    ClientOptions clientOptions,
    int maxMessageBytes,
    long drainSeconds,
    long startupTimeoutSeconds,
    int maxConcurrentDownloads,
    int maxConcurrentTransfers,
    List<String> optimizerShardTargets,
    SecurityConfig security) {

  public static final List<Settings.Key> KEYS =
      ShardTargets.with(
          List.of(
              Settings.Key.integer("port", "50053", 0, 65535, "gRPC port; 0 picks a free one"),
              Settings.Key.text("port-file", "", "if set, the bound gRPC port is written there"),
              Settings.Key.integer("metrics-port", "9464", -1, 65535, "Prometheus port; -1 off"),
              Settings.Key.text("checkpoint-dir", "checkpoints", "directory of the checkpoints"),
              Settings.Key.text("optimizer-target", "127.0.0.1:50051", "optimizer gRPC target"),
              Settings.Key.text(
                  "trainer-targets", "", "trainer replicas' control targets, comma-separated"),
              Settings.Key.integer(
                  "keep-last",
                  "0",
                  0,
                  1_000_000,
                  "newest checkpoints kept per run and kind; 0 all"),
              Settings.Key.text(
                  "keep-best-metric", "", "also keep the best: none | accuracy | loss | metric"),
              Settings.Key.integer(
                  "call-deadline-seconds", "60", 1, 86_400, "deadline of a short upstream call"),
              Settings.Key.integer(
                  "wait-deadline-seconds",
                  "600",
                  1,
                  86_400,
                  "deadline of a waiting or computing upstream call (BatchNorm, export)"),
              Settings.Key.integer(
                  "retry-attempts", "10", 1, 1000, "attempts per upstream call on UNAVAILABLE"),
              Settings.Key.integer(
                  "max-message-bytes", "4194304", 1024, 64 << 20, "largest inbound gRPC message"),
              Settings.Key.integer("drain-seconds", "30", 0, 3600, "shutdown drain"),
              Settings.Key.integer(
                  "max-concurrent-downloads",
                  "64",
                  1,
                  100_000,
                  "downloads streaming at once; more get RESOURCE_EXHAUSTED (CONCURRENCY_LIMIT)"),
              Settings.Key.integer(
                  "max-concurrent-transfers",
                  "4",
                  1,
                  1024,
                  "state checkpoints and restores at once; more get CONCURRENCY_LIMIT"),
              Settings.Key.integer(
                  "startup-timeout-seconds",
                  "300",
                  1,
                  86_400,
                  "how long to wait at start-up for the optimizer and every trainer to be SERVING")),
          0,
          "");

  /** {@link #KEYS} and the security keys every service shares (common/README.md, "Security"). */
  public static final List<Settings.Key> ALL_KEYS =
      SecurityConfig.with(KEYS, SecurityConfig.allKeys());

  public static CheckpointConfig from(String[] args, Map<String, String> env) {
    Settings s = Settings.parse(ALL_KEYS, args, env);
    if (s.path("checkpoint-dir") == null) {
      throw new IllegalArgumentException("checkpoint-dir (ROADLESS_CHECKPOINT_DIR) must be set");
    }
    List<String> trainers = list(s.text("trainer-targets"));
    ClientOptions options =
        ClientOptions.defaults()
            .withMaxAttempts(s.integer("retry-attempts"))
            .withCallDeadline(Duration.ofSeconds(s.integer("call-deadline-seconds")));
    options =
        new ClientOptions(
            options.callDeadline(),
            Duration.ofSeconds(s.integer("wait-deadline-seconds")),
            options.maxAttempts(),
            options.initialBackoff(),
            options.maxBackoff(),
            options.chunkBytes());
    return new CheckpointConfig(
        s.integer("port"),
        s.path("port-file"),
        s.integer("metrics-port"),
        s.path("checkpoint-dir"),
        s.text("optimizer-target"),
        trainers,
        new Retention(
            s.integer("keep-last"), Retention.BestMetric.parse(s.text("keep-best-metric"))),
        options,
        s.integer("max-message-bytes"),
        s.integer("drain-seconds"),
        s.integer("startup-timeout-seconds"),
        s.integer("max-concurrent-downloads"),
        s.integer("max-concurrent-transfers"),
        ShardTargets.from(s),
        SecurityConfig.from(s, true));
  }

  private static List<String> list(String commaSeparated) {
    return Arrays.stream(commaSeparated.split(","))
        .map(String::trim)
        .filter(t -> !t.isEmpty())
        .toList();
  }
}
