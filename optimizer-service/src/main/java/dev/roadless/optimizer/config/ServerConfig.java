package dev.roadless.optimizer.config;

import dev.roadless.common.config.Settings;
import dev.roadless.common.security.SecurityConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Typed, range-checked configuration of the optimizer server. Every key can be given as a flag
 * ({@code --snapshot-dir=/data}) or as an environment variable ({@code ROADLESS_SNAPSHOT_DIR});
 * flags win. {@link #KEYS} is the single table the README documents.
 */
public record ServerConfig(
    int port,
    Path portFile,
    int metricsPort,
    Path snapshotDir,
    long snapshotEverySteps,
    long snapshotEverySeconds,
    int threads,
    int maxMessageBytes,
    int flowControlWindow,
    Path sharedMemoryDir,
    long drainSeconds,
    SecurityConfig security) {

  /** Every configuration key with its default and meaning. */
  public static final List<Settings.Key> KEYS =
      List.of(
          Settings.Key.integer("port", "50051", 0, 65535, "gRPC port; 0 picks a free one"),
          Settings.Key.text("port-file", "", "if set, the bound gRPC port is written there"),
          Settings.Key.integer(
              "metrics-port", "9464", -1, 65535, "Prometheus /metrics port; -1 turns it off"),
          Settings.Key.text(
              "snapshot-dir", "", "directory for run snapshots; empty keeps state in memory only"),
          Settings.Key.integer(
              "snapshot-every-steps",
              "100",
              0,
              Integer.MAX_VALUE,
              "snapshot after N steps (0: never)"),
          Settings.Key.integer(
              "snapshot-every-seconds",
              "60",
              0,
              Integer.MAX_VALUE,
              "snapshot a changed run after T seconds (0: never)"),
          Settings.Key.integer(
              "threads", "0", 0, 1024, "worker threads of the step kernel; 0 = available cores"),
          Settings.Key.integer(
              "max-message-bytes",
              "4194304",
              65536,
              64 << 20,
              "largest inbound gRPC message; bigger ones get RESOURCE_EXHAUSTED"),
          Settings.Key.integer(
              "flow-control-window",
              "8388608",
              65535,
              Integer.MAX_VALUE,
              "HTTP/2 receive window per stream and connection, bytes: several 1 MiB chunks in"
                  + " flight (gRPC's 1 MiB default lets a push send one chunk per round trip)"),
          Settings.Key.text(
              "shared-memory-dir",
              "/dev/shm",
              "where same-host replicas' shared-memory segments are created (8 bytes per parameter"
                  + " per attached replica); empty turns AttachSharedMemory off"),
          Settings.Key.integer(
              "drain-seconds", "30", 0, 3600, "how long shutdown waits for in-flight calls"));

  /** {@link #KEYS} and the security keys every service shares (common/README.md, "Security"). */
  public static final List<Settings.Key> ALL_KEYS =
      SecurityConfig.with(KEYS, SecurityConfig.SERVER_KEYS);

  /** Parses flags and environment; throws IllegalArgumentException naming the bad key. */
  public static ServerConfig from(String[] args, Map<String, String> env) {
    Settings s = Settings.parse(ALL_KEYS, args, env);
    int threads = s.integer("threads");
    return new ServerConfig(
        s.integer("port"),
        s.path("port-file"),
        s.integer("metrics-port"),
        s.path("snapshot-dir"),
        s.integer("snapshot-every-steps"),
        s.integer("snapshot-every-seconds"),
        threads == 0 ? Runtime.getRuntime().availableProcessors() : threads,
        s.integer("max-message-bytes"),
        s.integer("flow-control-window"),
        s.path("shared-memory-dir"),
        s.integer("drain-seconds"),
        SecurityConfig.from(s, true));
  }
}
