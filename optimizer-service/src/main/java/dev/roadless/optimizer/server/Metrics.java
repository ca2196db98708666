package dev.roadless.optimizer.server;

import dev.roadless.common.runtime.ServiceMetrics;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

/**
 * The optimizer server's Prometheus metrics: every service's call and byte metrics ({@link
 * ServiceMetrics}) plus steps, refusals, snapshots and shared-memory traffic, in one registry the
 * HTTP exporter serves.
 */
public final class Metrics {
  private final ServiceMetrics service;
  private final Counter stepsApplied;
  private final Counter pushesRefused;
  private final Counter snapshots;
  private final Counter sharedMemoryBytes;

  public Metrics(PrometheusRegistry registry) {
    this.service = new ServiceMetrics(registry);
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
    return service.registry();
  }

  /** The call and byte metrics every service keeps (for the interceptor). */
  public ServiceMetrics service() {
    return service;
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

  ServiceMetrics.Bytes in() {
    return service.in();
  }

  ServiceMetrics.Bytes out() {
    return service.out();
  }

  ServiceMetrics.Bytes sharedMemoryIn() {
    return n -> sharedMemoryBytes.labelValues("in").inc(n);
  }

  ServiceMetrics.Bytes sharedMemoryOut() {
    return n -> sharedMemoryBytes.labelValues("out").inc(n);
  }
}
