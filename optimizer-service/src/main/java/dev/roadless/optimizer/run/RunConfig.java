package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import java.util.List;

/**
 * What a run is, in the run's own terms: its tensors (in order), parameter groups with complete
 * hyperparameters, variant, replica count and step mode. The gRPC adapters validate the wire's
 * {@code RunSpec} and fill in every default before they build one, so two configurations that mean
 * the same are equal.
 *
 * @param maxStaleness ASYNC: how many steps old a push may be; 0 in SYNC mode
 */
public record RunConfig(
    Variant variant,
    List<TensorSpec> tensors,
    List<GroupSpec> groups,
    int replicas,
    Mode mode,
    long maxStaleness) {

  /** How the replicas' pushes become steps. */
  public enum Mode {
    /** Every step waits for all R replicas and uses their mean gradient. */
    SYNC,
    /** Every push is a step of its own, if it is at most {@code maxStaleness} steps old. */
    ASYNC
  }

  public RunConfig {
    tensors = List.copyOf(tensors);
    groups = List.copyOf(groups);
  }

  /** The tensor names, in order. */
  public List<String> names() {
    return tensors.stream().map(TensorSpec::name).toList();
  }

  /** The tensors' element counts, in order. */
  public long[] sizes() {
    return tensors.stream().mapToLong(TensorSpec::numel).toArray();
  }
}
