package dev.roadless.loadtest;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A latency objective: a percentile of one histogram ({@code step} or an RPC name such as {@code
 * Train}) at most a duration, written {@code step:p99<=250ms}.
 *
 * @param histogram "step", "Train", "GetParameters" or "GetRunStatus"
 * @param percentile 0..100, e.g. 99.9
 * @param limit the largest acceptable latency
 */
public record Objective(String histogram, double percentile, Duration limit) {
  private static final Pattern FORM =
      Pattern.compile("\\s*([A-Za-z]+)\\s*:\\s*p([0-9]+(?:\\.[0-9]+)?)\\s*<=\\s*(.+)");

  /** Parses a comma-separated list; empty text gives none. */
  static List<Objective> parseAll(String text) {
    List<Objective> all = new ArrayList<>();
    for (String part : text.split(",")) {
      if (part.isBlank()) {
        continue;
      }
      Matcher m = FORM.matcher(part);
      if (!m.matches()) {
        throw new IllegalArgumentException(
            "objectives: expected name:pNN<=duration (e.g. step:p99<=250ms), got '" + part + "'");
      }
      double p = Double.parseDouble(m.group(2));
      if (p <= 0 || p > 100) {
        throw new IllegalArgumentException("objectives: percentile must be in (0, 100]: " + part);
      }
      all.add(new Objective(m.group(1), p, Durations.parse(m.group(3))));
    }
    return List.copyOf(all);
  }

  @Override
  public String toString() {
    return histogram + ":p" + percentile + "<=" + limit.toNanos() / 1e6 + "ms";
  }
}
