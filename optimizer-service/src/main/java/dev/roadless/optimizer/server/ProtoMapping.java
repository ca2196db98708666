package dev.roadless.optimizer.server;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.GroupStatus;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunFailure;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.PushOutcome;
import dev.roadless.proto.optimizer.v1.RunState;
import dev.roadless.proto.optimizer.v1.RunStatus;
import dev.roadless.proto.optimizer.v1.StateSlot;

/** Core and run values to wire messages and back. */
final class ProtoMapping {
  private ProtoMapping() {}

  static Sequence sequence(dev.roadless.proto.optimizer.v1.Sequence s) {
    return switch (s) {
      case SEQUENCE_TRAIN -> Sequence.TRAIN;
      case SEQUENCE_EVAL -> Sequence.EVAL;
      case SEQUENCE_BASE -> Sequence.BASE;
      default ->
          throw RoadlessException.of(
                  ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
                  "sequence must be SEQUENCE_TRAIN, SEQUENCE_EVAL or SEQUENCE_BASE")
              .with("field", "sequence")
              .build();
    };
  }

  static dev.roadless.proto.optimizer.v1.Sequence sequence(Sequence s) {
    return switch (s) {
      case TRAIN -> dev.roadless.proto.optimizer.v1.Sequence.SEQUENCE_TRAIN;
      case EVAL -> dev.roadless.proto.optimizer.v1.Sequence.SEQUENCE_EVAL;
      case BASE -> dev.roadless.proto.optimizer.v1.Sequence.SEQUENCE_BASE;
    };
  }

  static PushGradientsResponse push(PushResult r) {
    return PushGradientsResponse.newBuilder()
        .setOutcome(
            r.applied() ? PushOutcome.PUSH_OUTCOME_APPLIED : PushOutcome.PUSH_OUTCOME_ACCEPTED)
        .setStep(r.step())
        .setAppliedAsStep(r.appliedAsStep())
        .setCurrentStep(r.currentStep())
        .setDuplicate(r.duplicate())
        .build();
  }

  static RunStatus status(Run run) {
    RunStatus.Builder out =
        RunStatus.newBuilder()
            .setRunId(run.id())
            .setSpec(SpecMapping.toProto(run.config()))
            .setInitialized(run.initialized())
            .setStep(run.step())
            .addAllPendingReplicas(run.pendingReplicas())
            .putAllRefusedPushes(run.refusals())
            .setSnapshotStep(Math.max(0, run.snapshotStep()))
            .setSnapshotError(run.snapshotError());
    RunFailure failure = run.failure();
    out.setState(failure == null ? RunState.RUN_STATE_ACTIVE : RunState.RUN_STATE_FAILED);
    if (failure != null) {
      out.setFailure(
          dev.roadless.proto.optimizer.v1.RunFailure.newBuilder()
              .setStep(failure.step())
              .setTensor(failure.tensor())
              .setElement(failure.element())
              .setSlot(slot(failure.slot()))
              .setSnapshotStep(run.snapshotStep()));
    }
    for (String group : run.optimizer().groupNames()) {
      out.addGroups(group(run, group));
    }
    return out.build();
  }

  private static StateSlot slot(String name) {
    return switch (name) {
      case "z" -> StateSlot.STATE_SLOT_Z;
      case "x" -> StateSlot.STATE_SLOT_X;
      case "exp_avg_sq" -> StateSlot.STATE_SLOT_EXP_AVG_SQ;
      case "exp_avg" -> StateSlot.STATE_SLOT_EXP_AVG;
      default -> StateSlot.STATE_SLOT_UNSPECIFIED;
    };
  }

  static dev.roadless.proto.optimizer.v1.GroupStatus group(Run run, String group) {
    ScheduleFreeOptimizer opt = run.optimizer();
    GroupStatus s = opt.status(group);
    return dev.roadless.proto.optimizer.v1.GroupStatus.newBuilder()
        .setName(group)
        .setStep(s.k())
        .setLr(s.lr())
        .setLrK(s.lrK())
        .setLrMax(s.lrMax())
        .setWeightSum(s.weightSum())
        .setCK(s.ck())
        .setHyperparameters(
            HyperparameterMapping.toProto(opt.variant(), opt.hyperparameters(group)))
        .setYBeta(s.yBeta())
        .build();
  }

  static dev.roadless.proto.optimizer.v1.GroupStatus group(
      dev.roadless.optimizer.core.Variant variant, OptimizerState.GroupState g) {
    return dev.roadless.proto.optimizer.v1.GroupStatus.newBuilder()
        .setName(g.spec().name())
        .setStep(g.k())
        .setLr(g.spec().hyperparameters().lr())
        .setLrK(g.lrK())
        .setLrMax(g.lrMax())
        .setWeightSum(g.weightSum())
        .setCK(g.ck())
        .setHyperparameters(HyperparameterMapping.toProto(variant, g.spec().hyperparameters()))
        .setYBeta(g.yBeta())
        .build();
  }
}
