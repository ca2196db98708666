package dev.roadless.loadtest;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * {@code java -jar roadless-loadtest.jar --replicas=32 --params=100000 --duration=60s ...}: runs a
 * scenario against an optimizer server, prints a progress line and a summary, writes {@code
 * report.json} and {@code report.html}, and exits 0 when every check passed, 1 when an objective,
 * the error budget or the least throughput was missed, 2 on a bad flag.
 */
public final class LoadTestMain {
  public static final int PASSED = 0;
  public static final int CHECK_MISSED = 1;
  public static final int BAD_CONFIG = 2;

  private LoadTestMain() {}

  public static void main(String[] args) throws Exception {
    System.exit(run(args, System.getenv(), System.out, System.err));
  }

  /** The whole tool, without exiting: what {@link #main} and the tests call. */
  public static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err)
      throws Exception {
    Scenario sc;
    try {
      sc = Scenario.parse(args, env);
    } catch (IllegalArgumentException e) {
      err.println("roadless-loadtest: " + e.getMessage());
      return BAD_CONFIG;
    }
    out.println("roadless-loadtest: " + Html.describe(sc) + " against " + sc.target());
    LoadTest.Result result = LoadTest.run(sc, err);
    Verdict verdict = Verdict.of(result);
    Map<String, Object> tree = Report.tree(result, verdict);
    Path dir = Path.of(sc.out());
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("report.json"), Json.write(tree), StandardCharsets.UTF_8);
    Files.writeString(
        dir.resolve("report.html"), Html.page(result, verdict, tree), StandardCharsets.UTF_8);
    summary(result, verdict, dir, out);
    if (sc.reportStdout()) {
      out.print(Json.write(tree));
    }
    return verdict.passed() ? PASSED : CHECK_MISSED;
  }

  private static void summary(LoadTest.Result r, Verdict verdict, Path dir, PrintStream out) {
    Measurements m = r.measurements();
    out.printf(
        Locale.ROOT,
        "%,d steps applied in %.1f s; %.2f steps/s over %.1f s measured%n",
        m.stepsCompleted(),
        r.elapsedSeconds(),
        Verdict.throughput(r),
        r.measuredSeconds());
    for (String name : Measurements.NAMES) {
      var h = m.measured(name);
      if (h.getTotalCount() > 0) {
        out.printf(
            Locale.ROOT,
            "  %-14s n=%-8d p50 %9.2f ms  p90 %9.2f ms  p99 %9.2f ms  p99.9 %9.2f ms  max %9.2f ms%n",
            name,
            h.getTotalCount(),
            Measurements.ms(h.getValueAtPercentile(50)),
            Measurements.ms(h.getValueAtPercentile(90)),
            Measurements.ms(h.getValueAtPercentile(99)),
            Measurements.ms(h.getValueAtPercentile(99.9)),
            Measurements.ms(h.getMaxValue()));
      }
    }
    m.errors()
        .forEach((k, n) -> out.printf("  error %s %s %s: %,d%n", k.rpc(), k.code(), k.reason(), n));
    ServerFigures s = r.server();
    if (s.error().isEmpty()) {
      out.printf(
          Locale.ROOT,
          "  server: %.0f steps applied, refused %s, %.1f CPU s (%.2f cores), RSS %.0f -> %.0f MiB%n",
          s.stepsAppliedTotal(),
          s.pushesRefused(),
          s.cpuSeconds(),
          s.cpuSeconds() / r.elapsedSeconds(),
          s.residentBefore() / (1 << 20),
          s.residentAfter() / (1 << 20));
    } else {
      out.println("  server: no figures (" + s.error() + ")");
    }
    out.printf(Locale.ROOT, "  this tool: %.1f CPU s%n", r.cpuSeconds());
    out.println(
        "  load average (1, 5, 15 min): "
            + r.loadBefore()
            + " before, "
            + r.loadAfter()
            + " after");
    for (Verdict.Check c : verdict.checks()) {
      out.printf(
          Locale.ROOT, "  %s %s: %.4g%n", c.met() ? "met   " : "MISSED", c.what(), c.actual());
    }
    out.println(
        (verdict.passed() ? "PASSED" : "FAILED")
            + "; reports in "
            + dir.resolve("report.json")
            + " and report.html");
  }
}
