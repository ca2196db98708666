package dev.roadless.optimizer.core;

import java.util.List;
import java.util.Objects;

/**
 * Everything an exact resume needs (ALGORITHM.md section 4): the variant, the tensors, every
 * group's live hyperparameters and schedule scalars, and every state array. Made by {@link
 * ScheduleFreeOptimizer#exportState()} as a deep copy; immutable by convention (the arrays are not
 * copied again on access, so do not write to them). y is not stored: it is derived from x and z.
 *
 * @param variant the variant of every group
 * @param tensors the tensor specs, in the optimizer's order
 * @param groups one entry per parameter group, in the optimizer's order
 * @param tensorStates one entry per tensor, in the order of {@code tensors}
 * @param initialized whether initial values were set; before that the arrays are all zero
 */
public record OptimizerState(
    Variant variant,
    List<TensorSpec> tensors,
    List<GroupState> groups,
    List<TensorState> tensorStates,
    boolean initialized) {

  public OptimizerState {
    Objects.requireNonNull(variant, "variant");
    tensors = List.copyOf(tensors);
    groups = List.copyOf(groups);
    tensorStates = List.copyOf(tensorStates);
  }

  /** Completed steps (every group steps together, so their k agree). */
  public long stepCount() {
    return groups.isEmpty() ? 0 : groups.get(0).k();
  }

  /**
   * One group's spec (with the live hyperparameters) and exact schedule scalars.
   *
   * @param spec name, member tensors and hyperparameters as currently set
   * @param k completed steps
   * @param weightSum sum of averaging weights
   * @param lrMax largest scheduled lr so far
   * @param lrK scheduled lr of the last step
   * @param ck averaging coefficient of the last step
   * @param yBeta the beta that formed the current y; NaN before the first step
   */
  public record GroupState(
      GroupSpec spec, long k, double weightSum, double lrMax, double lrK, double ck, double yBeta) {
    public GroupState {
      Objects.requireNonNull(spec, "spec");
    }
  }

  /**
   * One tensor's float32 arrays.
   *
   * @param name the tensor's name
   * @param z the base iterate
   * @param x the average
   * @param v second moment ({@code exp_avg_sq}) or null where the variant keeps none
   * @param m first moment ({@code exp_avg}, or the SGD momentum buffer) or null where none is kept
   */
  public record TensorState(String name, float[] z, float[] x, float[] v, float[] m) {
    public TensorState {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(z, "z");
      Objects.requireNonNull(x, "x");
    }
  }
}
