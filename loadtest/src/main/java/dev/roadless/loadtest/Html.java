package dev.roadless.loadtest;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The self-contained HTML report: the scenario, the checks, the latency percentiles, the errors and
 * the server's figures as tables, and latency-over-time and throughput plots as inline SVG (no
 * script, no stylesheet or font from elsewhere).
 */
final class Html {
  private static final String[] COLORS = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"
  };

  private Html() {}

  static String page(LoadTest.Result r, Verdict verdict, Map<String, Object> tree) {
    Measurements m = r.measurements();
    StringBuilder h = new StringBuilder();
    h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .append("<title>roadless-loadtest report</title><style>")
        .append("body{font-family:sans-serif;margin:2em;max-width:960px}")
        .append("table{border-collapse:collapse;margin:1em 0}")
        .append("td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}")
        .append("th{background:#f4f4f4}.bad{color:#b00;font-weight:bold}.ok{color:#070}")
        .append("</style></head><body>\n");
    h.append("<h1>roadless-loadtest</h1>\n<p>")
        .append(escape(describe(r.scenario())))
        .append(", started ")
        .append(escape(r.startedAt().toString()))
        .append(
            String.format(
                Locale.ROOT,
                ", %.1f s (%.1f s measured after warm-up).",
                r.elapsedSeconds(),
                r.measuredSeconds()))
        .append("</p>\n");
    h.append("<h2 class=\"")
        .append(verdict.passed() ? "ok\">Passed" : "bad\">Failed")
        .append("</h2>\n<table><tr><th>check</th><th>limit</th><th>actual</th><th>met</th></tr>\n");
    for (Verdict.Check c : verdict.checks()) {
      h.append(
          row(
              c.what(),
              num(c.limit()),
              num(c.actual()),
              c.met() ? "yes" : "<b class=\"bad\">no</b>"));
    }
    h.append("</table>\n<h2>Latency (ms)</h2>\n<table><tr><th>histogram</th><th>count</th>");
    for (double p : Report.PERCENTILES) {
      h.append("<th>p").append(num(p)).append("</th>");
    }
    h.append("<th>max</th></tr>\n");
    for (String name : Measurements.NAMES) {
      var hist = m.measured(name);
      List<String> cells =
          new ArrayList<>(List.of(escape(name), Long.toString(hist.getTotalCount())));
      for (double p : Report.PERCENTILES) {
        cells.add(
            hist.getTotalCount() == 0 ? "" : num(Measurements.ms(hist.getValueAtPercentile(p))));
      }
      cells.add(hist.getTotalCount() == 0 ? "" : num(Measurements.ms(hist.getMaxValue())));
      h.append(row(cells.toArray(String[]::new)));
    }
    h.append("</table>\n<p>")
        .append(
            String.format(
                Locale.ROOT,
                "Throughput: %.2f steps/s over all runs; %,d steps applied in all (warm-up included).",
                Verdict.throughput(r),
                m.stepsCompleted()))
        .append("</p>\n");
    h.append(plots(m));
    h.append(
        "<h2>Errors</h2>\n<table><tr><th>rpc</th><th>status</th><th>reason</th><th>count</th></tr>\n");
    m.errors()
        .forEach(
            (k, n) ->
                h.append(
                    row(escape(k.rpc()), escape(k.code()), escape(k.reason()), Long.toString(n))));
    h.append("</table>\n<h2>Server (from its /metrics, after minus before)</h2>\n<table>\n");
    @SuppressWarnings("unchecked")
    Map<String, Object> server = (Map<String, Object>) tree.get("server");
    server.forEach(
        (k, v) ->
            h.append(row(escape(k), escape(v instanceof Double d ? num(d) : String.valueOf(v)))));
    h.append(
            "</table>\n<p>Latencies are HdrHistogram percentiles (3 significant digits). In the open loop")
        .append(
            " they are measured from each call's intended send time, so a stall counts against every")
        .append(" call it delayed (coordinated omission corrected).</p>\n</body></html>\n");
    return h.toString();
  }

  private static String plots(Measurements m) {
    List<SvgPlot.Series> latency = new ArrayList<>();
    List<SvgPlot.Series> rate = new ArrayList<>();
    int c = 0;
    for (String name : Measurements.NAMES) {
      List<Measurements.Point> pts = m.series(name);
      if (pts.stream().noneMatch(p -> p.count() > 0)) {
        continue;
      }
      String color = COLORS[c++ % COLORS.length];
      double[] x = new double[pts.size()];
      double[] p50 = new double[pts.size()];
      double[] p99 = new double[pts.size()];
      double[] perSecond = new double[pts.size()];
      double last = 0;
      for (int i = 0; i < pts.size(); i++) {
        Measurements.Point p = pts.get(i);
        x[i] = p.atSeconds();
        p50[i] = p.count() == 0 ? Double.NaN : p.p50Ms();
        p99[i] = p.count() == 0 ? Double.NaN : p.p99Ms();
        // The last interval may be a sliver of a second; its rate would be noise.
        perSecond[i] =
            p.atSeconds() - last >= 0.5 ? p.count() / (p.atSeconds() - last) : Double.NaN;
        last = p.atSeconds();
      }
      if (name.equals(Measurements.STEP) || name.equals(Measurements.TRAIN)) {
        latency.add(new SvgPlot.Series(name + " p50", color, x, p50));
        latency.add(new SvgPlot.Series(name + " p99", COLORS[c++ % COLORS.length], x, p99));
      }
      rate.add(
          new SvgPlot.Series(
              name.equals(Measurements.STEP) ? "steps/s" : name + " calls/s", color, x, perSecond));
    }
    return "<h2>Latency over time</h2>\n"
        + SvgPlot.render(
            "Latency per one-second interval", "time since start (s)", "latency (ms)", latency)
        + "<h2>Throughput over time</h2>\n"
        + SvgPlot.render("Completions per second", "time since start (s)", "per second", rate);
  }

  static String describe(Scenario sc) {
    return String.format(
        Locale.ROOT,
        "%d replicas over %d run(s), %,d params in %d tensor(s) per run, %s, %s, %s loop%s",
        sc.replicas(),
        sc.runs(),
        sc.params(),
        sc.tensors(),
        sc.sync() ? "SYNC" : "ASYNC",
        sc.transport().name().toLowerCase(Locale.ROOT),
        sc.rate() > 0 ? "open" : "closed",
        sc.rate() > 0
            ? String.format(Locale.ROOT, " at %.1f pushes/s per replica", sc.rate())
            : "");
  }

  static String escape(String s) {
    return s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\"", "&quot;");
  }

  private static String num(double v) {
    if (Double.isNaN(v)) {
      return "n/a";
    }
    return v == Math.rint(v) && Math.abs(v) < 1e15
        ? Long.toString((long) v)
        : String.format(Locale.ROOT, "%.4g", v);
  }

  private static String row(String... cells) {
    StringBuilder r = new StringBuilder("<tr>");
    for (String c : cells) {
      r.append("<td>").append(c).append("</td>");
    }
    return r.append("</tr>\n").toString();
  }
}
