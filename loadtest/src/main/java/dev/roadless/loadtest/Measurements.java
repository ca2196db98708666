package dev.roadless.loadtest;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Everything the workers record: a latency histogram per RPC and per step (HdrHistogram {@link
 * Recorder}s, written lock-free by many threads and read once a second by {@link #tick}), calls by
 * outcome, and errors by status code and ErrorInfo reason. Latencies are nanoseconds.
 */
final class Measurements {
  static final String STEP = "step";
  static final String TRAIN = "Train";
  static final String GET_PARAMETERS = "GetParameters";
  static final String GET_RUN_STATUS = "GetRunStatus";
  static final List<String> NAMES = List.of(STEP, TRAIN, GET_PARAMETERS, GET_RUN_STATUS);

  /** One histogram's figures over one interval of about a second. */
  record Point(double atSeconds, long count, double p50Ms, double p99Ms, double maxMs) {}

  /** Errors of one RPC with one status code and reason. */
  record ErrorKey(String rpc, String code, String reason) {}

  private static final long HIGHEST = 3_600_000_000_000L; // an hour, in ns

  private final Map<String, Recorder> recorders = new LinkedHashMap<>();
  private final Map<String, Histogram> measured = new LinkedHashMap<>();
  private final Map<String, Histogram> interval = new LinkedHashMap<>();
  private final Map<String, List<Point>> series = new LinkedHashMap<>();
  private final Map<String, LongAdder> ok = new LinkedHashMap<>();
  private final Map<ErrorKey, LongAdder> errors = new ConcurrentHashMap<>();
  private final LongAdder stepsCompleted = new LongAdder();

  Measurements() {
    for (String name : NAMES) {
      recorders.put(name, new Recorder(HIGHEST, 3));
      measured.put(name, new Histogram(HIGHEST, 3));
      series.put(name, new ArrayList<>());
      ok.put(name, new LongAdder());
    }
  }

  /** A successful call (or a completed step) that took {@code nanos}. */
  void success(String name, long nanos) {
    recorders.get(name).recordValue(Math.max(1, Math.min(HIGHEST, nanos)));
    ok.get(name).increment();
    if (name.equals(STEP)) {
      stepsCompleted.increment();
    }
  }

  /** A failed call; its latency is not in the histogram (it never did the work). */
  void failure(String rpc, Throwable t) {
    Status status = Status.fromThrowable(t);
    String reason = ErrorReasons.of(t);
    errors
        .computeIfAbsent(new ErrorKey(rpc, status.getCode().name(), reason), k -> new LongAdder())
        .increment();
  }

  /**
   * Closes the interval that ends {@code atSeconds} after the start: its figures go on the time
   * series, and into the reported percentiles when {@code afterWarmup}. Called by one thread.
   */
  synchronized void tick(double atSeconds, boolean afterWarmup) {
    for (String name : NAMES) {
      Histogram h = recorders.get(name).getIntervalHistogram(interval.get(name));
      interval.put(name, h);
      series
          .get(name)
          .add(
              new Point(
                  atSeconds,
                  h.getTotalCount(),
                  ms(h.getValueAtPercentile(50)),
                  ms(h.getValueAtPercentile(99)),
                  ms(h.getMaxValue())));
      if (afterWarmup) {
        measured.get(name).add(h);
      }
    }
  }

  synchronized Histogram measured(String name) {
    return measured.get(name).copy();
  }

  synchronized List<Point> series(String name) {
    return List.copyOf(series.get(name));
  }

  /** Successful calls (steps for "step"), warm-up included. */
  long successes(String name) {
    return ok.get(name).sum();
  }

  long stepsCompleted() {
    return stepsCompleted.sum();
  }

  Map<ErrorKey, Long> errors() {
    Map<ErrorKey, Long> copy = new LinkedHashMap<>();
    errors.entrySet().stream()
        .sorted(Map.Entry.comparingByKey(java.util.Comparator.comparing(ErrorKey::toString)))
        .forEach(e -> copy.put(e.getKey(), e.getValue().sum()));
    return copy;
  }

  long errorCount() {
    return errors.values().stream().mapToLong(LongAdder::sum).sum();
  }

  /** Calls made, all RPCs, warm-up included (a step is no call). */
  long calls() {
    long n = errorCount();
    for (String name : NAMES) {
      if (!name.equals(STEP)) {
        n += successes(name);
      }
    }
    return n;
  }

  static double ms(long nanos) {
    return nanos / 1e6;
  }
}
