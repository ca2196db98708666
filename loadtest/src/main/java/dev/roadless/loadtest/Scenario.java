package dev.roadless.loadtest;

import dev.roadless.common.config.Settings;
import dev.roadless.common.security.SecurityConfig;
import dev.roadless.optimizer.shard.ShardTargets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What one load test does, parsed and range-checked from flags or {@code ROADLESS_*} environment
 * variables (the same names; flags win). The table in the README lists every key.
 *
 * @param target the optimizer's gRPC address, host:port
 * @param metricsUrl the server's Prometheus endpoint, or "" to read none
 * @param replicas replicas in all, spread evenly over {@code runs}
 * @param runs runs trained at the same time
 * @param params float32 parameters of each run's model
 * @param tensors tensors each run's parameters are split into
 * @param sync SYNC (true) or ASYNC steps
 * @param transport how gradients travel
 * @param rate pushes per second per replica (open loop), or 0 for a closed loop
 * @param duration how long to train when {@code steps} is 0
 * @param steps steps per run to train, or 0 to train for {@code duration}
 * @param warmup time from the start whose samples are not in the percentiles
 * @param ramp time over which the replicas start, evenly spaced
 * @param readRate GetParameters calls per second at x (EVAL), or 0
 * @param statusRate GetRunStatus calls per second, or 0
 * @param injectNan fraction of pushes sent with a NaN in the gradient (refused by the server)
 * @param runPrefix run ids are {@code prefix-0 .. prefix-(M-1)}
 * @param out directory for report.json and report.html
 * @param maxErrorRate largest failed fraction of all calls before the test fails
 * @param objectives latency objectives, e.g. {@code step:p99<=250ms,Train:p50<=80ms}
 * @param minThroughput least steps per second (all runs together) before the test fails
 * @param reportStdout whether report.json is also printed to stdout (for a pod's log)
 * @param shardTargets the optimizer shards of every run, host:port in shard order (empty: the runs
 *     are not sharded; else {@code target} is shard 0, where reads, status and /metrics go)
 */
public record Scenario(
    String target,
    String metricsUrl,
    int replicas,
    int runs,
    int params,
    int tensors,
    boolean sync,
    Transport transport,
    double rate,
    Duration duration,
    long steps,
    Duration warmup,
    Duration ramp,
    double readRate,
    double statusRate,
    double injectNan,
    String runPrefix,
    String out,
    double maxErrorRate,
    List<Objective> objectives,
    double minThroughput,
    boolean reportStdout,
    List<String> shardTargets,
    SecurityConfig security) {

  /** How gradients and parameters travel. */
  public enum Transport {
    /** float32 chunks on the Train stream. */
    CHUNKS,
    /** bfloat16 chunks (half the bytes in; y still float32). */
    BF16,
    /** the same-host shared-memory segment, falling back to chunks when the server offers none. */
    SHM
  }

  static final List<Settings.Key> KEYS =
      ShardTargets.with(
          List.of(
              Settings.Key.text("optimizer-target", "127.0.0.1:50051", "optimizer gRPC host:port"),
              Settings.Key.text(
                  "metrics-url",
                  "auto",
                  "server /metrics URL; auto = target host, port 9464; empty off"),
              Settings.Key.integer("replicas", "8", 1, 100_000, "replicas in all"),
              Settings.Key.integer("runs", "1", 1, 10_000, "runs; replicas are spread evenly"),
              Settings.Key.integer(
                  "params", "100000", 1, 500_000_000, "float32 parameters per run"),
              Settings.Key.integer("tensors", "1", 1, 10_000, "tensors per run"),
              Settings.Key.text("mode", "sync", "sync|async"),
              Settings.Key.text("transport", "chunks", "chunks|bf16|shm"),
              Settings.Key.text("rate", "0", "pushes/s per replica (open loop); 0 = closed loop"),
              Settings.Key.text("duration", "30s", "how long to train when steps is 0"),
              Settings.Key.integer("steps", "0", 0, 100_000_000, "steps per run; 0 = use duration"),
              Settings.Key.text(
                  "warmup", "0s", "samples from the first T are not in the percentiles"),
              Settings.Key.text("ramp", "0s", "start the replicas evenly over T"),
              Settings.Key.text("read-rate", "0", "GetParameters(x) calls/s alongside training"),
              Settings.Key.text("status-rate", "0", "GetRunStatus calls/s alongside training"),
              Settings.Key.text("inject-nan", "0", "fraction of pushes sent with a NaN gradient"),
              Settings.Key.text("run-prefix", "", "run id prefix; empty = loadtest-<start time>"),
              Settings.Key.text("out", "loadtest-out", "directory for report.json and report.html"),
              Settings.Key.text(
                  "max-error-rate", "1", "fail when more calls than this fraction fail"),
              Settings.Key.text("objectives", "", "e.g. step:p99<=250ms,Train:p50<=80ms"),
              Settings.Key.text("min-throughput", "0", "fail below this many steps/s (all runs)"),
              Settings.Key.text("report-stdout", "false", "also print report.json to stdout")),
          1,
          "");

  /** {@link #KEYS} and the security keys every service shares (common/README.md, "Security"). */
  static final List<Settings.Key> ALL_KEYS =
      SecurityConfig.with(KEYS, SecurityConfig.clientOnlyKeys());

  /** Parses flags over environment variables; IllegalArgumentException names a bad key. */
  public static Scenario parse(String[] args, Map<String, String> env) {
    Settings s = Settings.parse(ALL_KEYS, args, env);
    int replicas = s.integer("replicas");
    int runs = s.integer("runs");
    if (replicas % runs != 0) {
      throw new IllegalArgumentException("replicas must be a multiple of runs");
    }
    if (s.integer("tensors") > s.integer("params")) {
      throw new IllegalArgumentException("tensors must be at most params");
    }
    String mode = s.text("mode").toLowerCase(Locale.ROOT);
    if (!mode.equals("sync") && !mode.equals("async")) {
      throw new IllegalArgumentException("mode must be sync or async, got '" + mode + "'");
    }
    Transport transport;
    try {
      transport = Transport.valueOf(s.text("transport").toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("transport must be chunks, bf16 or shm");
    }
    String target = s.text("optimizer-target").replaceFirst("^dns:///", "");
    String prefix = s.text("run-prefix");
    List<String> shards =
        ShardTargets.from(s).stream().map(t -> t.replaceFirst("^dns:///", "")).toList();
    if (!shards.isEmpty() && !mode.equals("sync")) {
      throw new IllegalArgumentException("only SYNC runs can be sharded");
    }
    if (!shards.isEmpty()) {
      target = shards.get(0); // reads, status and /metrics go to shard 0
    }
    return new Scenario(
        target,
        metricsUrl(s.text("metrics-url"), target),
        replicas,
        runs,
        s.integer("params"),
        s.integer("tensors"),
        mode.equals("sync"),
        transport,
        fraction(s, "rate", Double.MAX_VALUE),
        duration(s, "duration"),
        s.integer("steps"),
        duration(s, "warmup"),
        duration(s, "ramp"),
        fraction(s, "read-rate", Double.MAX_VALUE),
        fraction(s, "status-rate", Double.MAX_VALUE),
        fraction(s, "inject-nan", 1),
        prefix.isBlank() ? "loadtest-" + System.currentTimeMillis() / 1000 : prefix,
        s.text("out"),
        fraction(s, "max-error-rate", 1),
        Objective.parseAll(s.text("objectives")),
        fraction(s, "min-throughput", Double.MAX_VALUE),
        bool(s, "report-stdout"),
        shards,
        SecurityConfig.from(s, false));
  }

  int replicasPerRun() {
    return replicas / runs;
  }

  String runId(int run) {
    return runPrefix + "-" + run;
  }

  String host() {
    return host(target);
  }

  int port() {
    return port(target);
  }

  static String host(String target) {
    int colon = target.lastIndexOf(':');
    return colon < 0 ? target : target.substring(0, colon);
  }

  static int port(String target) {
    int colon = target.lastIndexOf(':');
    return colon < 0 ? 50051 : Integer.parseInt(target.substring(colon + 1));
  }

  private static String metricsUrl(String value, String target) {
    if (!value.equals("auto")) {
      return value.trim();
    }
    int colon = target.lastIndexOf(':');
    return "http://" + (colon < 0 ? target : target.substring(0, colon)) + ":9464/metrics";
  }

  private static double fraction(Settings s, String key, double max) {
    double v;
    try {
      v = Double.parseDouble(s.text(key).trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(key + " must be a number, got '" + s.text(key) + "'");
    }
    if (!(v >= 0 && v <= max)) {
      throw new IllegalArgumentException(key + " must be in [0, " + max + "], got " + v);
    }
    return v;
  }

  private static boolean bool(Settings s, String key) {
    String v = s.text(key).trim().toLowerCase(Locale.ROOT);
    if (!v.equals("true") && !v.equals("false")) {
      throw new IllegalArgumentException(key + " must be true or false, got '" + v + "'");
    }
    return v.equals("true");
  }

  private static Duration duration(Settings s, String key) {
    try {
      return Durations.parse(s.text(key));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(key + ": " + e.getMessage());
    }
  }
}
