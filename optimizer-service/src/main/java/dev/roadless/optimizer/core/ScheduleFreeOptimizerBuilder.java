package dev.roadless.optimizer.core;

import java.util.ArrayList;
import java.util.List;

/** Builds a {@link ScheduleFreeOptimizer} from specs declared one by one. */
public final class ScheduleFreeOptimizerBuilder {
  private final Variant variant;
  private final List<TensorSpec> tensors = new ArrayList<>();
  private final List<GroupSpec> groups = new ArrayList<>();
  private int threads = 1;

  ScheduleFreeOptimizerBuilder(Variant variant) {
    this.variant = variant;
  }

  /** Adds a tensor. */
  public ScheduleFreeOptimizerBuilder tensor(String name, int... shape) {
    tensors.add(new TensorSpec(name, shape));
    return this;
  }

  /** Adds a group over tensors added before or after. */
  public ScheduleFreeOptimizerBuilder group(
      String name, Hyperparameters hp, String... tensorNames) {
    groups.add(new GroupSpec(name, List.of(tensorNames), hp));
    return this;
  }

  /** Kernel threads (default 1). */
  public ScheduleFreeOptimizerBuilder threads(int n) {
    threads = n;
    return this;
  }

  /** Validates and builds; see the {@link ScheduleFreeOptimizer} constructor. */
  public ScheduleFreeOptimizer build() {
    return new ScheduleFreeOptimizer(variant, tensors, groups, threads);
  }
}
