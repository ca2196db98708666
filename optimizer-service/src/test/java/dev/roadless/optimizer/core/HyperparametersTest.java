package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

class HyperparametersTest {

  @Test
  void defaults_everyVariant_areValidAndUpstream() {
    for (Variant v : Variant.values()) {
      Hyperparameters.defaults(v).validate(v);
    }
    Hyperparameters sgd = Hyperparameters.defaults(Variant.SGD);
    assertEquals(1.0, sgd.lr());
    assertEquals(0.9, sgd.beta());
    Hyperparameters adamw = Hyperparameters.defaults(Variant.ADAMW);
    assertEquals(0.0025, adamw.lr());
    assertEquals(0.999, adamw.beta2());
    assertEquals(1e-8, adamw.eps());
    assertEquals(2.0, adamw.weightLrPower());
    assertEquals(0.0, adamw.r());
    assertEquals(0, adamw.warmupSteps());
    assertEquals(0.0, adamw.innerMomentum());
    assertTrue(Hyperparameters.defaults(Variant.RADAM).silentSgdPhase());
    assertEquals(0.9, Hyperparameters.defaults(Variant.WRAPPER_ADAM).baseMomentum());
  }

  @Test
  void validate_outOfRange_throwsNamingFieldAndRange() {
    bad(Variant.SGD, b -> b.lr(0), "lr must be finite and > 0");
    bad(Variant.SGD, b -> b.lr(Double.NaN), "lr must be finite and > 0");
    bad(Variant.SGD, b -> b.lr(Double.POSITIVE_INFINITY), "lr must be finite and > 0");
    bad(Variant.SGD, b -> b.beta(1.0), "beta must be in [0, 1)");
    bad(Variant.SGD, b -> b.beta(-0.1), "beta must be in [0, 1)");
    bad(Variant.ADAMW, b -> b.beta2(0), "beta2 must be in (0, 1)");
    bad(Variant.ADAMW, b -> b.eps(0), "eps must be finite and > 0");
    bad(Variant.ADAMW, b -> b.weightDecay(-1), "weight_decay must be finite and >= 0");
    bad(Variant.ADAMW, b -> b.warmupSteps(-1), "warmup_steps must be >= 0");
    bad(Variant.ADAMW, b -> b.weightLrPower(-2), "weight_lr_power must be finite and >= 0");
    bad(Variant.ADAMW, b -> b.r(Double.NaN), "r must be finite");
    bad(Variant.ADAMW, b -> b.innerMomentum(1), "inner_momentum must be in [0, 1)");
    bad(
        Variant.RADAM,
        b -> b.warmupSteps(5),
        "warmup_steps must be 0 (unset) for RADAM: RADAM rectifies");
    bad(
        Variant.WRAPPER_SGD,
        b -> b.warmupSteps(5),
        "warmup_steps must be 0 (unset) for WRAPPER_SGD: WRAPPER_SGD follows its base");
    bad(Variant.SGD, b -> b.innerMomentum(0.5), "inner_momentum applies only to ADAMW");
    bad(Variant.ADAMW_PAPER, b -> b.decayAtZ(true), "decay_at_z applies only to ADAMW");
    bad(Variant.SGD, b -> b.weightDecayAtY(0.1), "weight_decay_at_y applies only to WRAPPER");
    bad(Variant.ADAMW, b -> b.baseMomentum(0.9), "base_momentum applies only to WRAPPER");
    bad(
        Variant.WRAPPER_ADAM,
        b -> b.baseNesterov(true),
        "base_nesterov applies only to WRAPPER_SGD");
    bad(Variant.WRAPPER_SGD, b -> b.baseDampening(1.5), "base_dampening must be in [0, 1]");
    bad(Variant.WRAPPER_SGD, b -> b.baseNesterov(true), "base_nesterov requires base_momentum > 0");
    bad(
        Variant.WRAPPER_ADAM,
        b -> b.weightDecayAtY(-1),
        "weight_decay_at_y must be finite and >= 0");
  }

  @Test
  void validate_unusedFieldAtNonDefault_refusedForEveryVariant() {
    bad(Variant.SGD, b -> b.eps(-1), "eps applies only to the variants with a second moment");
    bad(Variant.WRAPPER_SGD, b -> b.beta2(0.5), "beta2 applies only to the variants");
    bad(Variant.ADAMW, b -> b.silentSgdPhase(false), "silent_sgd_phase applies only to RADAM");
    bad(Variant.RADAM, b -> b.baseDampening(0.1), "base_dampening applies only to WRAPPER_SGD");
    bad(Variant.WRAPPER_ADAM, b -> b.decayAtZ(true), "decay_at_z applies only to ADAMW");
  }

  @Test
  void validate_unusedFieldAtItsDefault_accepted() {
    Hyperparameters.defaults(Variant.SGD).toBuilder()
        .eps(1e-8)
        .beta2(0.999)
        .build()
        .validate(Variant.SGD);
    Hyperparameters.defaults(Variant.ADAMW).toBuilder()
        .silentSgdPhase(true)
        .build()
        .validate(Variant.ADAMW);
  }

  @Test
  void validate_refusal_namesTheWireField() {
    HyperparameterException e =
        assertThrows(
            HyperparameterException.class,
            () ->
                Hyperparameters.defaults(Variant.SGD).toBuilder()
                    .innerMomentum(0.5)
                    .build()
                    .validate(Variant.SGD));
    assertEquals("inner_momentum", e.field());
  }

  private static void bad(Variant v, UnaryOperator<Hyperparameters.Builder> change, String part) {
    Hyperparameters hp = change.apply(Hyperparameters.defaults(v).toBuilder()).build();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> hp.validate(v));
    assertTrue(
        e.getMessage().contains(part), () -> v + ": '" + e.getMessage() + "' lacks '" + part + "'");
  }
}
