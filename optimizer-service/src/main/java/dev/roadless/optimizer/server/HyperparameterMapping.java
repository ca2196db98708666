package dev.roadless.optimizer.server;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.HyperparameterException;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.Hyperparameters;

/** Wire hyperparameters (optional fields) to the core's complete, validated values and back. */
final class HyperparameterMapping {
  private HyperparameterMapping() {}

  /**
   * The core hyperparameters: {@code base} (or the variant's defaults when null) with every field
   * that {@code wire} sets replaced, validated for the variant.
   */
  static dev.roadless.optimizer.core.Hyperparameters resolve(
      Variant variant,
      dev.roadless.optimizer.core.Hyperparameters base,
      Hyperparameters wire,
      String group) {
    var b =
        (base == null ? dev.roadless.optimizer.core.Hyperparameters.defaults(variant) : base)
            .toBuilder();
    if (wire.hasLr()) b.lr(wire.getLr());
    if (wire.hasBeta()) b.beta(wire.getBeta());
    if (wire.hasBeta2()) b.beta2(wire.getBeta2());
    if (wire.hasEps()) b.eps(wire.getEps());
    if (wire.hasWeightDecay()) b.weightDecay(wire.getWeightDecay());
    if (wire.hasWarmupSteps()) b.warmupSteps(wire.getWarmupSteps());
    if (wire.hasR()) b.r(wire.getR());
    if (wire.hasWeightLrPower()) b.weightLrPower(wire.getWeightLrPower());
    if (wire.hasInnerMomentum()) b.innerMomentum(wire.getInnerMomentum());
    if (wire.hasDecayAtZ()) b.decayAtZ(wire.getDecayAtZ());
    if (wire.hasSilentSgdPhase()) b.silentSgdPhase(wire.getSilentSgdPhase());
    if (wire.hasWeightDecayAtY()) b.weightDecayAtY(wire.getWeightDecayAtY());
    if (wire.hasBaseMomentum()) b.baseMomentum(wire.getBaseMomentum());
    if (wire.hasBaseDampening()) b.baseDampening(wire.getBaseDampening());
    if (wire.hasBaseNesterov()) b.baseNesterov(wire.getBaseNesterov());
    var hp = b.build();
    try {
      hp.validate(variant);
    } catch (IllegalArgumentException e) {
      // The core names the field as the wire does (inner_momentum, warmup_steps, ...).
      String field = e instanceof HyperparameterException h ? h.field() : "hyperparameters";
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_INVALID_HYPERPARAMETER,
              "group '" + group + "': " + e.getMessage())
          .with("field", field)
          .build();
    }
    return hp;
  }

  /** Every field that applies to the variant, set. */
  static Hyperparameters toProto(Variant variant, dev.roadless.optimizer.core.Hyperparameters hp) {
    Hyperparameters.Builder b =
        Hyperparameters.newBuilder()
            .setLr(hp.lr())
            .setBeta(hp.beta())
            .setWeightDecay(hp.weightDecay())
            .setR(hp.r())
            .setWeightLrPower(hp.weightLrPower());
    if (variant.hasSecondMoment()) {
      b.setBeta2(hp.beta2()).setEps(hp.eps());
    }
    switch (variant) {
      case SGD, ADAMW_PAPER -> b.setWarmupSteps(hp.warmupSteps());
      case ADAMW ->
          b.setWarmupSteps(hp.warmupSteps())
              .setInnerMomentum(hp.innerMomentum())
              .setDecayAtZ(hp.decayAtZ());
      case RADAM -> b.setSilentSgdPhase(hp.silentSgdPhase());
      case WRAPPER_SGD ->
          b.setWeightDecayAtY(hp.weightDecayAtY())
              .setBaseMomentum(hp.baseMomentum())
              .setBaseDampening(hp.baseDampening())
              .setBaseNesterov(hp.baseNesterov());
      case WRAPPER_ADAM ->
          b.setWeightDecayAtY(hp.weightDecayAtY()).setBaseMomentum(hp.baseMomentum());
    }
    return b.build();
  }
}
