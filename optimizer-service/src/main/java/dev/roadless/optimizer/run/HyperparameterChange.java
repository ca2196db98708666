package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.function.UnaryOperator;

/** A change of one group's hyperparameters, applied from the next step on, or refused whole. */
final class HyperparameterChange {
  private HyperparameterChange() {}

  /**
   * Replaces {@code group}'s hyperparameters with {@code change} of the current ones.
   *
   * @throws RoadlessException GROUP_NOT_FOUND, or INVALID_HYPERPARAMETER for values the variant
   *     does not allow (or a change of which moment buffers exist)
   */
  static void apply(
      String runId,
      ScheduleFreeOptimizer optimizer,
      String group,
      UnaryOperator<Hyperparameters> change) {
    if (!optimizer.groupNames().contains(group)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_GROUP_NOT_FOUND, "no group '" + group + "'")
          .with("run_id", runId)
          .with("field", "group")
          .build();
    }
    Hyperparameters next = change.apply(optimizer.hyperparameters(group));
    try {
      optimizer.setHyperparameters(group, next);
    } catch (IllegalArgumentException e) {
      throw RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_HYPERPARAMETER, e.getMessage())
          .with("field", "hyperparameters")
          .build();
    }
  }
}
