package dev.roadless.optimizer.server;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.optimizer.run.RunConfig;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.common.v1.TensorDescriptor;
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
 * Translates the wire's run spec into the run's configuration and back, validating as it goes
 * (public for the snapshot store, which keeps the wire spec). The normalized spec has every default
 * filled in, so two specs that mean the same compare equal.
 */
public final class SpecMapping {
  private static final Pattern TENSOR_NAME = Pattern.compile("[A-Za-z0-9_.:/-]{1,256}");
  private static final Pattern GROUP_NAME = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  private static final int MAX_REPLICAS = 1024;

  /**
   * Most elements of one tensor: a Java array's limit less one kernel chunk, so every index, every
   * chunk boundary and every element count the server forms from it stays within an int.
   */
  static final long MAX_TENSOR_ELEMENTS = TensorSpec.MAX_NUMEL - (1 << 16);

  /** Most elements of a whole run (per state slot): keeps every byte count far from overflow. */
  static final long MAX_RUN_ELEMENTS = 1L << 40;

  private SpecMapping() {}

  static Variant variant(OptimizerVariant v) {
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

  static OptimizerVariant variant(Variant v) {
    return switch (v) {
      case SGD -> OptimizerVariant.OPTIMIZER_VARIANT_SGD;
      case ADAMW -> OptimizerVariant.OPTIMIZER_VARIANT_ADAMW;
      case ADAMW_PAPER -> OptimizerVariant.OPTIMIZER_VARIANT_ADAMW_PAPER;
      case RADAM -> OptimizerVariant.OPTIMIZER_VARIANT_RADAM;
      case WRAPPER_SGD -> OptimizerVariant.OPTIMIZER_VARIANT_WRAPPER_SGD;
      case WRAPPER_ADAM -> OptimizerVariant.OPTIMIZER_VARIANT_WRAPPER_ADAM;
    };
  }

  static long numel(TensorDescriptor d) {
    long n = 1;
    for (long dim : d.getShapeList()) {
      n *= dim;
    }
    return n;
  }

  /** Validates a spec and fills in every default. */
  static RunSpec normalize(RunSpec spec) {
    Variant variant = variant(spec.getVariant());
    RunSpec.Builder out = spec.toBuilder().clearTensors().clearParameterGroups();
    Set<String> names = new HashSet<>();
    long runElements = 0;
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
        if (dim < 1 || dim > MAX_TENSOR_ELEMENTS) {
          throw tooLarge(
              d.getName(), "has dimension " + dim + "; the limit is", MAX_TENSOR_ELEMENTS);
        }
        n *= dim; // both factors are at most 2^31, so the product cannot wrap
        if (n > MAX_TENSOR_ELEMENTS) {
          throw tooLarge(d.getName(), "has more elements than", MAX_TENSOR_ELEMENTS);
        }
      }
      runElements += n;
      if (runElements > MAX_RUN_ELEMENTS) {
        throw tooLarge(null, "the run's tensors have more elements than", MAX_RUN_ELEMENTS);
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

  /**
   * The run configuration a wire spec means, validated with every default filled in.
   *
   * @throws dev.roadless.common.error.RoadlessException INVALID_RUN_SPEC (naming the field),
   *     DTYPE_MISMATCH or INVALID_HYPERPARAMETER
   */
  public static RunConfig config(RunSpec requested) {
    RunSpec spec = normalize(requested);
    Variant variant = variant(spec.getVariant());
    return new RunConfig(
        variant,
        tensors(spec),
        groups(spec, variant),
        spec.getReplicas(),
        spec.getMode() == StepMode.STEP_MODE_ASYNC ? RunConfig.Mode.ASYNC : RunConfig.Mode.SYNC,
        spec.getMaxStaleness());
  }

  /** The wire spec of a configuration: the normalized spec it was made from. */
  public static RunSpec toProto(RunConfig config) {
    RunSpec.Builder out =
        RunSpec.newBuilder()
            .setVariant(variant(config.variant()))
            .setReplicas(config.replicas())
            .setMode(
                config.mode() == RunConfig.Mode.ASYNC
                    ? StepMode.STEP_MODE_ASYNC
                    : StepMode.STEP_MODE_SYNC)
            .setMaxStaleness(config.maxStaleness());
    for (TensorSpec t : config.tensors()) {
      out.addTensors(descriptor(t));
    }
    for (GroupSpec g : config.groups()) {
      out.addParameterGroups(
          ParameterGroup.newBuilder()
              .setName(g.name())
              .addAllTensorNames(g.tensorNames())
              .setHyperparameters(
                  HyperparameterMapping.toProto(config.variant(), g.hyperparameters())));
    }
    return out.build();
  }

  /** A tensor as the wire describes it (float32, its shape). */
  static TensorDescriptor descriptor(TensorSpec t) {
    TensorDescriptor.Builder d =
        TensorDescriptor.newBuilder().setName(t.name()).setDtype(DataType.DATA_TYPE_FLOAT32);
    for (int dim : t.shape()) {
      d.addShape(dim);
    }
    return d.build();
  }

  static List<TensorSpec> tensors(RunSpec spec) {
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

  /** A shape out of bounds: field "tensors", the tensor (null: the whole run), the limit. */
  private static RoadlessException tooLarge(String tensor, String what, long limit) {
    String message = (tensor == null ? "" : "tensor '" + tensor + "' ") + what + " " + limit;
    RoadlessException.Builder b =
        RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, message)
            .with("field", "tensors");
    if (tensor != null) {
      b.with("tensor", tensor);
    }
    return b.with("limit", limit).build();
  }

  static RoadlessException invalidSpec(String field, String message) {
    return RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, message)
        .with("field", field)
        .build();
  }
}
