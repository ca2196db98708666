package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;

/**
 * The refusals of a value that is not finite, built in one place whichever transport or check found
 * it: chunks as they arrive, a shared-memory segment, or the replicas' mean.
 */
public final class Refusals {
  private Refusals() {}

  /**
   * Element {@code element} of {@code tensor} is {@code value}, NaN or infinite: {@code
   * NON_FINITE_GRADIENT} for a push, {@code NON_FINITE_VALUE} for initial values.
   */
  /** NON_FINITE_GRADIENT for the element {@code bad} ({@code tensor << 32 | element}) of a push. */
  static RoadlessException nonFiniteGradient(
      java.util.List<String> names, long bad, dev.roadless.optimizer.core.ReplicaMean.Input g) {
    int t = (int) (bad >>> 32);
    int i = (int) bad;
    return nonFinite(
        ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT, names.get(t), i, g.valueAt(t, i));
  }

  public static RoadlessException nonFinite(
      ErrorReason reason, String tensor, long element, float value) {
    return RoadlessException.of(
            reason, "tensor '" + tensor + "' element " + element + " is " + value)
        .with("tensor", tensor)
        .with("element", element)
        .build();
  }

  /** Every replica's gradient is finite at this element, but their float32 sum overflows. */
  static RoadlessException meanOverflows(String runId, String tensor, int element) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT,
            "tensor '"
                + tensor
                + "' element "
                + element
                + ": every replica's gradient is finite, but their float32 sum overflows, so"
                + " their mean is not finite")
        .with("run_id", runId)
        .with("tensor", tensor)
        .with("element", element)
        .build();
  }

  /**
   * A pending replica's gradient, left in its shared-memory segment, was finite when it was checked
   * and is not now: the replica wrote its segment again while its push was pending, which the
   * protocol forbids.
   */
  static RoadlessException pendingChanged(String tensor, int element, float value) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_SHARED_MEMORY_MISUSE,
            "tensor '"
                + tensor
                + "' element "
                + element
                + " of the other replica's pending gradient changed to "
                + value
                + " after its push")
        .with("tensor", tensor)
        .with("element", element)
        .build();
  }

  static RoadlessException replicaOutOfRange(String runId, int replica, int replicas) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_REPLICA_OUT_OF_RANGE,
            "replica " + replica + " is outside [0, " + replicas + ")")
        .with("run_id", runId)
        .with("replica", replica)
        .build();
  }

  static RoadlessException stepInFuture(String runId, long pushStep, long step) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_STEP_IN_FUTURE,
            "push for step " + pushStep + " but run '" + runId + "' has completed " + step)
        .with("run_id", runId)
        .with("step", pushStep)
        .with("current_step", step)
        .build();
  }

  static RoadlessException stepMismatch(String runId, long expectedStep, long step) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_STEP_MISMATCH,
            "run '" + runId + "' is at step " + step + ", not " + expectedStep)
        .with("run_id", runId)
        .with("step", expectedStep)
        .with("current_step", step)
        .build();
  }

  /** The push's chunks were summed into a step whose accumulation the other replica voided. */
  static RoadlessException pushVoided(String runId, int replica, long pushStep, String why) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_PUSH_VOIDED,
            "step "
                + pushStep
                + " was voided ("
                + why
                + ") after replica "
                + replica
                + "'s gradient had been summed into it; the state is unchanged: push the same"
                + " gradient for step "
                + pushStep
                + " again")
        .with("run_id", runId)
        .with("replica", replica)
        .with("step", pushStep)
        .build();
  }

  static RoadlessException pushConflict(String runId, int replica, long pushStep) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_PUSH_CONFLICT,
            "replica "
                + replica
                + " already pushed a different gradient for step "
                + pushStep
                + "; the accepted one stands")
        .with("run_id", runId)
        .with("replica", replica)
        .with("step", pushStep)
        .build();
  }

  /** A step number below zero or past the largest step a run reaches. */
  public static RoadlessException stepOutOfRange(String field, long value, long limit) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_STEP_OUT_OF_RANGE,
            field + " " + value + " is outside [0, " + limit + "]")
        .with("field", field)
        .with("step", value)
        .with("limit", limit)
        .build();
  }

  static RoadlessException runFailed(String runId, RunFailure f, long snapshotStep) {
    RoadlessException.Builder b =
        RoadlessException.of(
                ErrorReason.ERROR_REASON_RUN_FAILED,
                "run '"
                    + runId
                    + "' FAILED: step "
                    + f.step()
                    + " made "
                    + f.slot()
                    + " of tensor '"
                    + f.tensor()
                    + "' non-finite at element "
                    + f.element()
                    + (snapshotStep < 0
                        ? "; it has no finite snapshot: export it for inspection or delete it"
                        : "; roll it back to its snapshot at step "
                            + snapshotStep
                            + " or delete"
                            + " it"))
            .with("run_id", runId)
            .with("step", f.step())
            .with("tensor", f.tensor())
            .with("element", f.element());
    if (snapshotStep >= 0) {
      b.with("snapshot_step", snapshotStep);
    }
    return b.build();
  }

  static RoadlessException runDeleted(String runId) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_RUN_NOT_FOUND, "run '" + runId + "' was deleted")
        .with("run_id", runId)
        .build();
  }

  static RoadlessException initialValuesMissing(String runId) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_INITIAL_VALUES_MISSING,
            "run '" + runId + "' has no initial values yet")
        .with("run_id", runId)
        .build();
  }
}
