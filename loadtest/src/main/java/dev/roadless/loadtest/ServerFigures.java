package dev.roadless.loadtest;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the server's own /metrics say about the test: the difference of two scrapes, before and
 * after. CPU and memory come from the Prometheus process and JVM collectors (the optimizer exports
 * them); a server without them shows NaN there.
 *
 * @param error why there are no figures ("" when there are)
 * @param stepsApplied roadless_steps_applied_total of each run under test, after minus before
 * @param pushesRefused roadless_pushes_refused_total by reason, after minus before
 * @param cpuSeconds process_cpu_seconds_total, after minus before
 * @param residentBefore process_resident_memory_bytes before
 * @param residentAfter process_resident_memory_bytes after
 * @param heapBefore jvm_memory_used_bytes{area="heap"} before
 * @param heapAfter jvm_memory_used_bytes{area="heap"} after
 */
record ServerFigures(
    String error,
    Map<String, Double> stepsApplied,
    Map<String, Double> pushesRefused,
    double cpuSeconds,
    double residentBefore,
    double residentAfter,
    double heapBefore,
    double heapAfter) {

  static ServerFigures unavailable(String why) {
    return new ServerFigures(
        why, Map.of(), Map.of(), Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
  }

  static ServerFigures between(PrometheusText before, PrometheusText after, List<String> runIds) {
    Map<String, Double> steps = new LinkedHashMap<>();
    for (String run : runIds) {
      Map<String, String> match = Map.of("run", run);
      steps.put(
          run,
          after.sum("roadless_steps_applied_total", match)
              - before.sum("roadless_steps_applied_total", match));
    }
    Map<String, Double> refused = new LinkedHashMap<>();
    Map<String, Double> was = before.byLabel("roadless_pushes_refused_total", "reason");
    after
        .byLabel("roadless_pushes_refused_total", "reason")
        .forEach(
            (reason, n) -> {
              double d = n - was.getOrDefault(reason, 0.0);
              if (d != 0) {
                refused.put(reason, d);
              }
            });
    return new ServerFigures(
        "",
        steps,
        refused,
        gauge(after, "process_cpu_seconds_total", Map.of())
            - gauge(before, "process_cpu_seconds_total", Map.of()),
        gauge(before, "process_resident_memory_bytes", Map.of()),
        gauge(after, "process_resident_memory_bytes", Map.of()),
        gauge(before, "jvm_memory_used_bytes", Map.of("area", "heap")),
        gauge(after, "jvm_memory_used_bytes", Map.of("area", "heap")));
  }

  double stepsAppliedTotal() {
    return stepsApplied.values().stream().mapToDouble(Double::doubleValue).sum();
  }

  private static double gauge(PrometheusText t, String name, Map<String, String> match) {
    return t.has(name) ? t.sum(name, match) : Double.NaN;
  }
}
