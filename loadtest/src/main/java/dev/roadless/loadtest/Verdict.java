package dev.roadless.loadtest;

import java.util.ArrayList;
import java.util.List;
import org.HdrHistogram.Histogram;

/**
 * Whether a finished test met what the command line asked: every latency objective, the error
 * budget and the least throughput. A missed one makes the tool exit with status 1, so a deploy
 * pipeline can stop on it.
 */
record Verdict(List<Check> checks) {
  /** One promise and how the test did against it. */
  record Check(String what, double limit, double actual, boolean met) {}

  static Verdict of(LoadTest.Result r) {
    Scenario sc = r.scenario();
    List<Check> checks = new ArrayList<>();
    for (Objective o : sc.objectives()) {
      double limitMs = o.limit().toNanos() / 1e6;
      if (!Measurements.NAMES.contains(o.histogram())) {
        checks.add(new Check(o + " (no such histogram)", limitMs, Double.NaN, false));
        continue;
      }
      Histogram h = r.measurements().measured(o.histogram());
      // An objective on a histogram with no samples is missed: nothing shows it was met.
      double actual =
          h.getTotalCount() == 0
              ? Double.NaN
              : Measurements.ms(h.getValueAtPercentile(o.percentile()));
      checks.add(new Check(o.toString(), limitMs, actual, actual <= limitMs));
    }
    double errorRate = errorRate(r.measurements());
    checks.add(
        new Check(
            "error-rate<=" + sc.maxErrorRate(),
            sc.maxErrorRate(),
            errorRate,
            errorRate <= sc.maxErrorRate()));
    if (sc.minThroughput() > 0) {
      double tput = throughput(r);
      checks.add(
          new Check(
              "steps/s>=" + sc.minThroughput(),
              sc.minThroughput(),
              tput,
              tput >= sc.minThroughput()));
    }
    return new Verdict(List.copyOf(checks));
  }

  boolean passed() {
    return checks.stream().allMatch(Check::met);
  }

  /** Failed calls over all calls, warm-up included (an error in the warm-up is an error). */
  static double errorRate(Measurements m) {
    long calls = m.calls();
    return calls == 0 ? 0 : (double) m.errorCount() / calls;
  }

  /** Steps per second of all runs together over the measured window. */
  static double throughput(LoadTest.Result r) {
    long steps = r.measurements().measured(Measurements.STEP).getTotalCount();
    return r.measuredSeconds() > 0 ? steps / r.measuredSeconds() : 0;
  }
}
