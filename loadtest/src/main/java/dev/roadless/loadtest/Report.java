package dev.roadless.loadtest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.HdrHistogram.Histogram;

/** The report of a finished test as a JSON tree (maps and lists, in a stable order). */
final class Report {
  static final double[] PERCENTILES = {50, 90, 99, 99.9};

  private Report() {}

  static Map<String, Object> tree(LoadTest.Result r, Verdict verdict) {
    Scenario sc = r.scenario();
    Measurements m = r.measurements();
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("tool", "roadless-loadtest");
    root.put("started_at", r.startedAt().toString());
    root.put("scenario", scenario(sc));
    root.put("elapsed_seconds", r.elapsedSeconds());
    root.put("measured_seconds", r.measuredSeconds());
    Map<String, Object> counts = new LinkedHashMap<>();
    Map<String, Object> byRun = new LinkedHashMap<>();
    for (RunState run : r.runs()) {
      byRun.put(run.runId, run.stepsSeen.sum());
    }
    counts.put("steps_applied", m.stepsCompleted());
    counts.put("steps_applied_by_run", byRun);
    Map<String, Object> calls = new LinkedHashMap<>();
    for (String name : Measurements.NAMES) {
      if (!name.equals(Measurements.STEP)) {
        calls.put(name, m.successes(name));
      }
    }
    counts.put("calls_ok", calls);
    counts.put("calls_failed", m.errorCount());
    counts.put("error_rate", Verdict.errorRate(m));
    root.put("counts", counts);
    Map<String, Object> tput = new LinkedHashMap<>();
    tput.put("steps_per_second", Verdict.throughput(r));
    for (String name : Measurements.NAMES) {
      if (!name.equals(Measurements.STEP) && r.measuredSeconds() > 0) {
        tput.put(name + "_per_second", m.measured(name).getTotalCount() / r.measuredSeconds());
      }
    }
    root.put("throughput", tput);
    Map<String, Object> latency = new LinkedHashMap<>();
    for (String name : Measurements.NAMES) {
      latency.put(name, latency(m.measured(name)));
    }
    root.put("latency_ms", latency);
    List<Object> errors = new ArrayList<>();
    m.errors()
        .forEach(
            (k, n) ->
                errors.add(
                    Map.of("rpc", k.rpc(), "status", k.code(), "reason", k.reason(), "count", n)));
    root.put("errors", errors);
    root.put("server", server(r.server(), r.elapsedSeconds()));
    root.put(
        "client",
        Map.of(
            "load_average_before",
            r.loadBefore(),
            "load_average_after",
            r.loadAfter(),
            "cpu_seconds",
            r.cpuSeconds()));
    List<Object> checks = new ArrayList<>();
    for (Verdict.Check c : verdict.checks()) {
      Map<String, Object> one = new LinkedHashMap<>();
      one.put("check", c.what());
      one.put("limit", c.limit());
      one.put("actual", c.actual());
      one.put("met", c.met());
      checks.add(one);
    }
    root.put("checks", checks);
    root.put("passed", verdict.passed());
    Map<String, Object> timeline = new LinkedHashMap<>();
    for (String name : Measurements.NAMES) {
      List<Object> points = new ArrayList<>();
      for (Measurements.Point p : m.series(name)) {
        points.add(List.of(p.atSeconds(), p.count(), p.p50Ms(), p.p99Ms(), p.maxMs()));
      }
      timeline.put(name, points);
    }
    root.put("timeline_columns", List.of("seconds", "count", "p50_ms", "p99_ms", "max_ms"));
    root.put("timeline", timeline);
    return root;
  }

  static Map<String, Object> latency(Histogram h) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("count", h.getTotalCount());
    if (h.getTotalCount() == 0) {
      return out;
    }
    out.put("min", Measurements.ms(h.getMinValue()));
    out.put("mean", h.getMean() / 1e6);
    for (double p : PERCENTILES) {
      out.put(
          "p" + (p == Math.rint(p) ? Integer.toString((int) p) : Double.toString(p)),
          Measurements.ms(h.getValueAtPercentile(p)));
    }
    out.put("max", Measurements.ms(h.getMaxValue()));
    return out;
  }

  private static Map<String, Object> scenario(Scenario sc) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("target", sc.target());
    out.put("replicas", sc.replicas());
    out.put("runs", sc.runs());
    out.put("params_per_run", sc.params());
    out.put("tensors_per_run", sc.tensors());
    out.put("mode", sc.sync() ? "SYNC" : "ASYNC");
    out.put("transport", sc.transport().name().toLowerCase(java.util.Locale.ROOT));
    out.put("loop", sc.rate() > 0 ? "open" : "closed");
    out.put("rate_per_replica", sc.rate());
    out.put("steps", sc.steps());
    out.put("duration_seconds", sc.steps() > 0 ? Double.NaN : sc.duration().toMillis() / 1e3);
    out.put("warmup_seconds", sc.warmup().toMillis() / 1e3);
    out.put("ramp_seconds", sc.ramp().toMillis() / 1e3);
    out.put("read_rate", sc.readRate());
    out.put("status_rate", sc.statusRate());
    out.put("inject_nan", sc.injectNan());
    out.put("run_prefix", sc.runPrefix());
    return out;
  }

  private static Map<String, Object> server(ServerFigures s, double elapsed) {
    Map<String, Object> out = new LinkedHashMap<>();
    if (!s.error().isEmpty()) {
      out.put("unavailable", s.error());
      return out;
    }
    out.put("steps_applied", s.stepsAppliedTotal());
    out.put("steps_applied_by_run", new LinkedHashMap<Object, Object>(s.stepsApplied()));
    out.put("pushes_refused", new LinkedHashMap<Object, Object>(s.pushesRefused()));
    out.put("cpu_seconds", s.cpuSeconds());
    out.put("cpu_cores_busy", s.cpuSeconds() / elapsed);
    out.put("resident_bytes_before", s.residentBefore());
    out.put("resident_bytes_after", s.residentAfter());
    out.put("heap_used_bytes_before", s.heapBefore());
    out.put("heap_used_bytes_after", s.heapAfter());
    return out;
  }
}
