package dev.roadless.common.runtime;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

/**
 * The metrics every Roadless gRPC server keeps: call durations by method and status code, and
 * payload bytes in each direction. A service's own counters live in a class of its own that
 * registers in the same {@link PrometheusRegistry}.
 */
public final class ServiceMetrics {
  private final PrometheusRegistry registry;
  private final Histogram callSeconds;
  private final Counter bytes;

  public ServiceMetrics(PrometheusRegistry registry) {
    this.registry = registry;
    this.callSeconds =
        Histogram.builder()
            .name("roadless_grpc_call_seconds")
            .help("gRPC call durations by method and status code")
            .labelNames("method", "code")
            .register(registry);
    this.bytes =
        Counter.builder()
            .name("roadless_bytes_total")
            .help("protobuf payload bytes received (in) and sent (out)")
            .labelNames("direction")
            .register(registry);
  }

  /** A fresh registry; tests use this to keep their counts apart. */
  public static ServiceMetrics newIsolated() {
    return new ServiceMetrics(new PrometheusRegistry());
  }

  public PrometheusRegistry registry() {
    return registry;
  }

  void callFinished(String method, String code, double seconds) {
    callSeconds.labelValues(method, code).observe(seconds);
  }

  /** Payload bytes received. */
  public Bytes in() {
    return n -> bytes.labelValues("in").inc(n);
  }

  /** Payload bytes sent. */
  public Bytes out() {
    return n -> bytes.labelValues("out").inc(n);
  }

  /** Counts bytes in one direction. */
  @FunctionalInterface
  public interface Bytes {
    void add(long n);
  }
}
