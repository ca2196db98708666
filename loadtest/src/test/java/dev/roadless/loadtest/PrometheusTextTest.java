package dev.roadless.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

class PrometheusTextTest {
  private static final String TEXT =
      """
      # HELP roadless_steps_applied_total optimizer steps applied, by run
      # TYPE roadless_steps_applied_total counter
      roadless_steps_applied_total{run="a"} 12.0
      roadless_steps_applied_total{run="b",zone="x \\"y\\", z"} 3.0 1700000000000
      process_cpu_seconds_total 4.5
      jvm_memory_used_bytes{area="heap"} 1.0E8
      jvm_memory_used_bytes{area="nonheap"} 5.0E7
      roadless_grpc_call_seconds_bucket{method="m",le="+Inf"} +Inf
      """;

  @Test
  void sum_labelsWithEscapedQuotesAndTimestamps_readsEverySample() {
    PrometheusText t = PrometheusText.parse(TEXT);

    assertEquals(12.0, t.sum("roadless_steps_applied_total", Map.of("run", "a")));
    assertEquals(3.0, t.sum("roadless_steps_applied_total", Map.of("zone", "x \"y\", z")));
    assertEquals(15.0, t.sum("roadless_steps_applied_total", Map.of()));
    assertEquals(4.5, t.sum("process_cpu_seconds_total", Map.of()));
    assertEquals(1e8, t.sum("jvm_memory_used_bytes", Map.of("area", "heap")));
    assertTrue(Double.isInfinite(t.sum("roadless_grpc_call_seconds_bucket", Map.of())));
  }

  @Test
  void byLabel_twoRuns_sumsPerValue() {
    assertEquals(
        Map.of("a", 12.0, "b", 3.0),
        PrometheusText.parse(TEXT).byLabel("roadless_steps_applied_total", "run"));
  }
}
