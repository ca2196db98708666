package dev.roadless.loadtest;

import java.io.PrintStream;
import java.util.List;

/**
 * Closes the histograms' intervals once a second (the time series of the report) and prints the
 * progress line: rewritten in place on a terminal, one line every ten seconds in a log.
 */
final class Ticker {
  private static final long SECOND = 1_000_000_000L;

  private final Scenario scenario;
  private final Measurements m;
  private final long start;
  private final PrintStream out;
  private final boolean terminal = System.console() != null;
  private long lastTick;
  private long nextTick;
  private double measuredSeconds;
  private long stepsAtLastLine;
  private long lastLine;

  Ticker(Scenario scenario, Measurements m, long start, PrintStream out) {
    this.scenario = scenario;
    this.m = m;
    this.start = start;
    this.out = out;
    this.lastTick = start;
    this.nextTick = start + SECOND;
    this.lastLine = start;
  }

  long untilNextMillis() {
    return Math.max(1, (nextTick - System.nanoTime()) / 1_000_000 + 1);
  }

  void maybeTick() {
    long now = System.nanoTime();
    if (now >= nextTick) {
      tick(now);
      nextTick += SECOND * Math.max(1, (now - nextTick) / SECOND + 1);
    }
  }

  /** The last, partial interval, then the line that ends the progress display. */
  void last() {
    tick(System.nanoTime());
    if (terminal) {
      out.println();
    }
  }

  double measuredSeconds() {
    return measuredSeconds;
  }

  private void tick(long now) {
    boolean afterWarmup = lastTick - start >= scenario.warmup().toNanos();
    m.tick((now - start) / 1e9, afterWarmup);
    if (afterWarmup) {
      measuredSeconds += (now - lastTick) / 1e9;
    }
    lastTick = now;
    if (terminal || now - lastLine >= 10 * SECOND) {
      line(now, afterWarmup);
    }
  }

  private void line(long now, boolean afterWarmup) {
    long steps = m.stepsCompleted();
    double rate = (steps - stepsAtLastLine) / ((now - lastLine) / 1e9);
    stepsAtLastLine = steps;
    lastLine = now;
    List<Measurements.Point> train = m.series(Measurements.TRAIN);
    Measurements.Point p = train.get(train.size() - 1);
    String text =
        String.format(
            "loadtest %5.0fs  steps %,d  %.2f steps/s  Train p50 %.1f ms p99 %.1f ms  errors %,d%s",
            (now - start) / 1e9,
            steps,
            rate,
            p.p50Ms(),
            p.p99Ms(),
            m.errorCount(),
            afterWarmup ? "" : "  (warm-up)");
    if (terminal) {
      out.print("\r" + text + "   ");
      out.flush();
    } else {
      out.println(text);
    }
  }
}
