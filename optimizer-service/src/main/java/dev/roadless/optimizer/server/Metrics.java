package dev.roadless.optimizer.server;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

/** The server's Prometheus metrics, registered in one registry the HTTP exporter serves. */
public final class Metrics {
  private final PrometheusRegistry registry;
  private final Histogram callSeconds;
  private final Counter stepsApplied;
  private final Counter pushesRefused;
  private final Counter bytes;
  private final Counter snapshots;
  private final Counter sharedMemoryBytes;

  public Metrics(PrometheusRegistry registry) {
    this.registry = registry;
    this.callSeconds =
        Histogram.builder()
            .name("roadless_grpc_call_seconds")
            .help("gRPC call durations by method and status code")
            .labelNames("method", "code")
            .register(registry);
    this.stepsApplied =
        Counter.builder()
            .name("roadless_steps_applied_total")
            .help("optimizer steps applied, by run")
            .labelNames("run")
            .register(registry);
    this.pushesRefused =
        Counter.builder()
            .name("roadless_pushes_refused_total")
            .help("gradient pushes refused, by reason")
            .labelNames("reason")
            .register(registry);
    this.bytes =
        Counter.builder()
            .name("roadless_bytes_total")
            .help("protobuf payload bytes received (in) and sent (out)")
            .labelNames("direction")
            .register(registry);
    this.sharedMemoryBytes =
        Counter.builder()
            .name("roadless_shared_memory_bytes_total")
            .help(
                "tensor bytes read from (in) and written to (out) same-host replicas' shared-memory"
                    + " segments")
            .labelNames("direction")
            .register(registry);
    this.snapshots =
        Counter.builder()
            .name("roadless_snapshots_total")
            .help("run snapshots written, by outcome")
            .labelNames("outcome")
            .register(registry);
  }

  /** A fresh registry; tests use this to keep their counts apart. */
  public static Metrics newIsolated() {
    return new Metrics(new PrometheusRegistry());
  }

  public PrometheusRegistry registry() {
    return registry;
  }

  void callFinished(String method, String code, double seconds) {
    callSeconds.labelValues(method, code).observe(seconds);
  }

  public void stepApplied(String run) {
    stepsApplied.labelValues(run).inc();
  }

  public void pushRefused(String reason) {
    pushesRefused.labelValues(reason).inc();
  }

  public void snapshot(boolean ok) {
    snapshots.labelValues(ok ? "ok" : "failed").inc();
  }

  public double refusedCount(String reason) {
    return pushesRefused.labelValues(reason).get();
  }

  Bytes in() {
    return n -> bytes.labelValues("in").inc(n);
  }

  Bytes out() {
    return n -> bytes.labelValues("out").inc(n);
  }

  Bytes sharedMemoryIn() {
    return n -> sharedMemoryBytes.labelValues("in").inc(n);
  }

  Bytes sharedMemoryOut() {
    return n -> sharedMemoryBytes.labelValues("out").inc(n);
  }

  /** Counts payload bytes in one direction. */
  interface Bytes {
    void add(long n);
  }
}
