package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ASYNC bookkeeping: which pushes were applied (answers remembered per replica, so a re-sent push
 * gets its first answer and is not applied twice) and how stale a push may be. Not thread-safe: the
 * run calls it under its lock.
 */
final class AsyncLedger {
  /** ASYNC answers remembered per replica for idempotent re-sends. */
  private static final int MEMORY = 256;

  private final String runId;
  private final long maxStaleness;
  private final Map<Integer, LinkedHashMap<Long, PushResult>> answers = new HashMap<>();

  AsyncLedger(String runId, long maxStaleness) {
    this.runId = runId;
    this.maxStaleness = maxStaleness;
  }

  /** The answer to an earlier push of this replica for this step, or null. */
  PushResult earlier(int replica, long pushStep) {
    LinkedHashMap<Long, PushResult> mine = answers.get(replica);
    return mine == null ? null : mine.get(pushStep);
  }

  /** Throws STEP_STALE when a push for {@code pushStep} is too old at {@code step}. */
  void checkFresh(long pushStep, long step) {
    if (step - pushStep > maxStaleness) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_STEP_STALE,
              "push for step "
                  + pushStep
                  + " is "
                  + (step - pushStep)
                  + " steps old; max_staleness is "
                  + maxStaleness)
          .with("run_id", runId)
          .with("step", pushStep)
          .with("current_step", step)
          .build();
    }
  }

  /** Remembers an applied push's answer. */
  void applied(int replica, PushResult result) {
    answers
        .computeIfAbsent(
            replica,
            r ->
                new LinkedHashMap<>() {
                  @Override
                  protected boolean removeEldestEntry(Map.Entry<Long, PushResult> eldest) {
                    return size() > MEMORY;
                  }
                })
        .put(result.step(), result);
  }
}
