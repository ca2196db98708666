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
    long memoryBudgetBytes,
    long sharedMemoryBudgetBytes,
    int maxStreamsPerConnection,
    int streamIdleSeconds,
    int maxConcurrentExports,
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
              "drain-seconds", "30", 0, 3600, "how long shutdown waits for in-flight calls"),
          Settings.Key.integer(
              "memory-budget-mib",
              "0",
              0,
              1 << 30,
              "memory every run, push buffer and state copy is admitted against, MiB; beyond it"
                  + " calls get RESOURCE_EXHAUSTED (MEMORY_BUDGET_EXCEEDED). 0: 80% of the heap"
                  + " limit (-Xmx, or the container's limit via -XX:MaxRAMPercentage)"),
          Settings.Key.integer(
              "shared-memory-budget-mib",
              "0",
              0,
              1 << 30,
              "bytes of shared-memory segments allowed at once, MiB; 0: half of the"
                  + " shared-memory directory's file system"),
          Settings.Key.integer(
              "max-streams-per-connection",
              "256",
              1,
              1 << 20,
              "concurrent calls one client connection may have open (HTTP/2 max concurrent"
                  + " streams); more wait for the client's transport"),
          Settings.Key.integer(
              "stream-idle-seconds",
              "300",
              0,
              86400,
              "a client stream that sends nothing for this long while the server waits for it"
                  + " is closed with DEADLINE_EXCEEDED (STREAM_IDLE); 0: never"),
          Settings.Key.integer(
              "max-concurrent-exports",
              "2",
              1,
              1024,
              "ExportState calls served at once; more get RESOURCE_EXHAUSTED (CONCURRENCY_LIMIT)"));

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
        (long) s.integer("memory-budget-mib") << 20,
        (long) s.integer("shared-memory-budget-mib") << 20,
        s.integer("max-streams-per-connection"),
        s.integer("stream-idle-seconds"),
        s.integer("max-concurrent-exports"),
        SecurityConfig.from(s, true));
  }
}
