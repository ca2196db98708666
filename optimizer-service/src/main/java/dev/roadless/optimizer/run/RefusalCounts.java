package dev.roadless.optimizer.run;

import dev.roadless.proto.common.v1.ErrorReason;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** Refused pushes by reason, for GetRunStatus; lock-free. */
final class RefusalCounts {
  private final Map<String, LongAdder> refused = new ConcurrentHashMap<>();

  void count(ErrorReason reason) {
    refused
        .computeIfAbsent(reason.name().replaceFirst("^ERROR_REASON_", ""), r -> new LongAdder())
        .increment();
  }

  /** Reason (without its prefix) to count, sorted. */
  Map<String, Long> snapshot() {
    Map<String, Long> out = new TreeMap<>();
    refused.forEach((k, v) -> out.put(k, v.sum()));
    return out;
  }
}
