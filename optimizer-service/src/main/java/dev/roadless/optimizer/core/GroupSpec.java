package dev.roadless.optimizer.core;

import java.util.List;
import java.util.Objects;

/**
 * A parameter group: tensors that share hyperparameters and one schedule (k, weight_sum, lr_max).
 *
 * @param name unique within an optimizer, non-empty
 * @param tensorNames the member tensors, at least one; copied
 * @param hyperparameters validated against the variant when the optimizer is built
 */
public record GroupSpec(String name, List<String> tensorNames, Hyperparameters hyperparameters) {
  public GroupSpec {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(hyperparameters, "hyperparameters");
    if (name.isEmpty()) {
      throw new IllegalArgumentException("group name must not be empty");
    }
    tensorNames = List.copyOf(tensorNames);
    if (tensorNames.isEmpty()) {
      throw new IllegalArgumentException("group '" + name + "' has no tensors");
    }
  }
}
