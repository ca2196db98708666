package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Translates the wire's run spec into the core's specs and back, validating as it goes. The
 * normalized spec has every default filled in, so two specs that mean the same compare equal.
 */
public final class SpecMapping {
  private static final Pattern TENSOR_NAME = Pattern.compile("[A-Za-z0-9_.:/-]{1,256}");
  private static final Pattern GROUP_NAME = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  private static final int MAX_REPLICAS = 1024;

  private SpecMapping() {}

  public static Variant variant(OptimizerVariant v) {
    return switch (v) {
      case OPTIMIZER_VARIANT_SGD -> Variant.SGD;
      case OPTIMIZER_VARIANT_ADAMW -> Variant.ADAMW;
      case OPTIMIZER_VARIANT_ADAMW_PAPER -> Variant.ADAMW_PAPER;
      case OPTIMIZER_VARIANT_RADAM -> Variant.RADAM;
      case OPTIMIZER_VARIANT_WRAPPER_SGD -> Variant.WRAPPER_SGD;
      case OPTIMIZER_VARIANT_WRAPPER_ADAM -> Variant.WRAPPER_ADAM;
      default -> throw invalidSpec("variant", "variant must be set");
    };
  }

  public static OptimizerVariant variant(Variant v) {
    return switch (v) {
      case SGD -> OptimizerVariant.OPTIMIZER_VARIANT_SGD;
      case ADAMW -> OptimizerVariant.OPTIMIZER_VARIANT_ADAMW;
      case ADAMW_PAPER -> OptimizerVariant.OPTIMIZER_VARIANT_ADAMW_PAPER;
      case RADAM -> OptimizerVariant.OPTIMIZER_VARIANT_RADAM;
      case WRAPPER_SGD -> OptimizerVariant.OPTIMIZER_VARIANT_WRAPPER_SGD;
      case WRAPPER_ADAM -> OptimizerVariant.OPTIMIZER_VARIANT_WRAPPER_ADAM;
    };
  }

  public static long numel(TensorDescriptor d) {
    long n = 1;
    for (long dim : d.getShapeList()) {
      n *= dim;
    }
    return n;
  }

  /** Validates a spec and fills in every default. */
  public static RunSpec normalize(RunSpec spec) {
    Variant variant = variant(spec.getVariant());
    RunSpec.Builder out = spec.toBuilder().clearTensors().clearParameterGroups();
    Set<String> names = new HashSet<>();
    if (spec.getTensorsCount() == 0) {
      throw invalidSpec("tensors", "a run needs at least one tensor");
    }
    for (TensorDescriptor d : spec.getTensorsList()) {
      if (!TENSOR_NAME.matcher(d.getName()).matches() || !names.add(d.getName())) {
        throw invalidSpec("tensors", "tensor name '" + d.getName() + "' is invalid or repeated");
      }
      if (d.getDtype() != DataType.DATA_TYPE_FLOAT32
          && d.getDtype() != DataType.DATA_TYPE_UNSPECIFIED) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_DTYPE_MISMATCH,
                "tensor '" + d.getName() + "': the optimizer state is float32, not " + d.getDtype())
            .with("tensor", d.getName())
            .build();
      }
      long n = 1;
      for (long dim : d.getShapeList()) {
        if (dim < 1 || dim > TensorSpec.MAX_NUMEL) {
          throw invalidSpec("tensors", "tensor '" + d.getName() + "' has dimension " + dim);
        }
        n *= dim;
        if (n > TensorSpec.MAX_NUMEL) {
          throw invalidSpec("tensors", "tensor '" + d.getName() + "' has too many elements");
        }
      }
      out.addTensors(d.toBuilder().setDtype(DataType.DATA_TYPE_FLOAT32));
    }
    Set<String> groupNames = new HashSet<>();
    Set<String> grouped = new HashSet<>();
    if (spec.getParameterGroupsCount() == 0) {
      throw invalidSpec("parameter_groups", "a run needs at least one parameter group");
    }
    for (ParameterGroup g : spec.getParameterGroupsList()) {
      if (!GROUP_NAME.matcher(g.getName()).matches() || !groupNames.add(g.getName())) {
        throw invalidSpec(
            "parameter_groups", "group name '" + g.getName() + "' is invalid or repeated");
      }
      for (String t : g.getTensorNamesList()) {
        if (!names.contains(t)) {
          throw invalidSpec(
              "parameter_groups", "group '" + g.getName() + "' names unknown tensor '" + t + "'");
        }
        if (!grouped.add(t)) {
          throw invalidSpec("parameter_groups", "tensor '" + t + "' is in two groups");
        }
      }
      if (g.getTensorNamesCount() == 0) {
        throw invalidSpec("parameter_groups", "group '" + g.getName() + "' has no tensors");
      }
      var hp = HyperparameterMapping.resolve(variant, null, g.getHyperparameters(), g.getName());
      out.addParameterGroups(
          g.toBuilder().setHyperparameters(HyperparameterMapping.toProto(variant, hp)));
    }
    if (grouped.size() != names.size()) {
      names.removeAll(grouped);
      throw invalidSpec("parameter_groups", "tensors in no group: " + names);
    }
    if (spec.getReplicas() < 1 || spec.getReplicas() > MAX_REPLICAS) {
      throw invalidSpec("replicas", "replicas must be in [1, " + MAX_REPLICAS + "]");
    }
    if (spec.getMode() != StepMode.STEP_MODE_SYNC && spec.getMode() != StepMode.STEP_MODE_ASYNC) {
      throw invalidSpec("mode", "mode must be STEP_MODE_SYNC or STEP_MODE_ASYNC");
    }
    if (spec.getMaxStaleness() < 0
        || (spec.getMode() == StepMode.STEP_MODE_SYNC && spec.getMaxStaleness() != 0)) {
      throw invalidSpec("max_staleness", "max_staleness must be >= 0, and 0 in SYNC mode");
    }
    return out.build();
  }

  /** A fresh optimizer for a normalized spec. */
  static ScheduleFreeOptimizer newOptimizer(RunSpec spec, int threads) {
    Variant variant = variant(spec.getVariant());
    try {
      return new ScheduleFreeOptimizer(variant, tensors(spec), groups(spec, variant), threads);
    } catch (IllegalArgumentException e) {
      throw invalidSpec("spec", e.getMessage());
    }
  }

  /** An optimizer restored from state, after checking that the state fits the spec. */
  static ScheduleFreeOptimizer fromState(RunSpec spec, OptimizerState state, int threads) {
    if (state.variant() != variant(spec.getVariant()) || !state.tensors().equals(tensors(spec))) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_INVALID_STATE,
              "the state's variant or tensors do not match the spec")
          .with("field", "spec")
          .build();
    }
    try {
      return ScheduleFreeOptimizer.fromState(state, threads);
    } catch (IllegalArgumentException e) {
      throw RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_STATE, e.getMessage()).build();
    }
  }

  static void updateGroup(Run run, String group, Hyperparameters change) {
    ScheduleFreeOptimizer opt = run.optimizer();
    if (!opt.groupNames().contains(group)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_GROUP_NOT_FOUND, "no group '" + group + "'")
          .with("run_id", run.id())
          .with("field", "group")
          .build();
    }
    var hp =
        HyperparameterMapping.resolve(opt.variant(), opt.hyperparameters(group), change, group);
    try {
      opt.setHyperparameters(group, hp);
    } catch (IllegalArgumentException e) {
      throw RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_HYPERPARAMETER, e.getMessage())
          .with("field", "hyperparameters")
          .build();
    }
  }

  public static List<TensorSpec> tensors(RunSpec spec) {
    List<TensorSpec> out = new ArrayList<>();
    for (TensorDescriptor d : spec.getTensorsList()) {
      out.add(
          new TensorSpec(
              d.getName(), d.getShapeList().stream().mapToInt(Math::toIntExact).toArray()));
    }
    return out;
  }

  private static List<GroupSpec> groups(RunSpec spec, Variant variant) {
    List<GroupSpec> out = new ArrayList<>();
    for (ParameterGroup g : spec.getParameterGroupsList()) {
      out.add(
          new GroupSpec(
              g.getName(),
              g.getTensorNamesList(),
              HyperparameterMapping.resolve(variant, null, g.getHyperparameters(), g.getName())));
    }
    return out;
  }

  static RoadlessException invalidSpec(String field, String message) {
    return RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, message)
        .with("field", field)
        .build();
  }
}
