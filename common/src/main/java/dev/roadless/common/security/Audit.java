package dev.roadless.common.security;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.List;
import java.util.logging.Logger;

/**
 * One audit line per refused call and per mutating call, with the caller's identity, on the logger
 * {@code roadless.audit} (a JSON line like every other log line), and counted: {@code
 * roadless_auth_denied_total{method,reason}} and {@code roadless_audited_calls_total{method,code}}.
 */
public final class Audit {
  private static final Logger LOG = Logger.getLogger("roadless.audit");

  private final Counter denied;
  private final Counter audited;

  public Audit(PrometheusRegistry registry) {
    this.denied =
        Counter.builder()
            .name("roadless_auth_denied_total")
            .help("calls refused by authentication (UNAUTHENTICATED) or authorization")
            .labelNames("method", "reason")
            .register(registry);
    this.audited =
        Counter.builder()
            .name("roadless_audited_calls_total")
            .help("mutating calls that passed authorization, by final status code")
            .labelNames("method", "code")
            .register(registry);
  }

  /** A fresh registry (tests). */
  public static Audit newIsolated() {
    return new Audit(new PrometheusRegistry());
  }

  void denied(String identity, String method, String run, String reason, String message) {
    denied.labelValues(bare(method), reason).inc();
    LOG.warning(
        "audit outcome=denied reason="
            + reason
            + " identity="
            + (identity == null ? "-" : identity)
            + " method="
            + method
            + " run="
            + (run == null ? "-" : run)
            + " detail="
            + message);
  }

  void mutation(String identity, String method, List<String> runs, String code) {
    audited.labelValues(bare(method), code).inc();
    LOG.info(
        "audit outcome="
            + code
            + " identity="
            + identity
            + " method="
            + method
            + " run="
            + (runs.isEmpty() ? "-" : String.join(",", runs)));
  }

  /** The count of refusals of {@code method} (bare name) with {@code reason}. */
  public double deniedCount(String method, String reason) {
    return denied.labelValues(method, reason).get();
  }

  /** The count of audited mutating calls of {@code method} (bare name) ending with {@code code}. */
  public double auditedCount(String method, String code) {
    return audited.labelValues(method, code).get();
  }

  private static String bare(String method) {
    return method.substring(method.indexOf('/') + 1);
  }
}
