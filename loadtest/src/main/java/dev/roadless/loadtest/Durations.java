package dev.roadless.loadtest;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as people write them on a command line: 250us, 80ms, 30s, 2m. */
final class Durations {
  private static final Pattern FORM =
      Pattern.compile("\\s*([0-9]+(?:\\.[0-9]+)?)\\s*(us|ms|s|m)\\s*");

  private Durations() {}

  static Duration parse(String text) {
    Matcher m = FORM.matcher(text);
    if (!m.matches()) {
      throw new IllegalArgumentException(
          "expected a number with us, ms, s or m (e.g. 250ms, 30s), got '" + text + "'");
    }
    double v = Double.parseDouble(m.group(1));
    double nanos =
        switch (m.group(2)) {
          case "us" -> v * 1e3;
          case "ms" -> v * 1e6;
          case "s" -> v * 1e9;
          default -> v * 60e9;
        };
    return Duration.ofNanos(Math.round(nanos));
  }
}
