package dev.roadless.optimizer.core;

/**
 * Range checks behind {@link Hyperparameters#validate(Variant)}; one message per field, each naming
 * the field as the wire spells it.
 *
 * <p>One rule for fields a variant does not use, the same for every variant: such a field must hold
 * its neutral value (the default of {@link Hyperparameters.Builder}, which is also what an unset
 * wire field means); any other value is refused, never silently dropped.
 */
final class HyperparameterRules {
  private static final Hyperparameters NEUTRAL = new Hyperparameters.Builder().build();

  private HyperparameterRules() {}

  static void check(Variant variant, Hyperparameters h) {
    if (variant == null) {
      throw new IllegalArgumentException("variant must not be null");
    }
    positiveFinite("lr", h.lr());
    unitInterval("beta", h.beta());
    nonNegativeFinite("weight_decay", h.weightDecay());
    if (!Double.isFinite(h.r())) {
      throw new HyperparameterException("r", "r must be finite, got " + h.r());
    }
    // lr_max can be 0 (RAdam silent phase): a negative power would make the weight infinite.
    nonNegativeFinite("weight_lr_power", h.weightLrPower());
    if (variant.hasSecondMoment()) {
      openUnitInterval("beta2", h.beta2());
      positiveFinite("eps", h.eps());
    } else {
      unused(variant, "beta2", h.beta2() != NEUTRAL.beta2(), "the variants with a second moment");
      unused(variant, "eps", h.eps() != NEUTRAL.eps(), "the variants with a second moment");
    }
    checkWarmup(variant, h);
    if (variant == Variant.ADAMW) {
      unitInterval("inner_momentum", h.innerMomentum());
    } else {
      unused(variant, "inner_momentum", h.innerMomentum() != NEUTRAL.innerMomentum(), "ADAMW");
      unused(variant, "decay_at_z", h.decayAtZ() != NEUTRAL.decayAtZ(), "ADAMW");
    }
    if (variant != Variant.RADAM) {
      unused(variant, "silent_sgd_phase", h.silentSgdPhase() != NEUTRAL.silentSgdPhase(), "RADAM");
    }
    if (variant.isWrapper()) {
      nonNegativeFinite("weight_decay_at_y", h.weightDecayAtY());
      unitInterval("base_momentum", h.baseMomentum());
    } else {
      String wrappers = "WRAPPER_SGD and WRAPPER_ADAM";
      unused(
          variant, "weight_decay_at_y", h.weightDecayAtY() != NEUTRAL.weightDecayAtY(), wrappers);
      unused(variant, "base_momentum", h.baseMomentum() != NEUTRAL.baseMomentum(), wrappers);
    }
    if (variant == Variant.WRAPPER_SGD) {
      checkTorchSgd(h);
    } else {
      unused(
          variant, "base_dampening", h.baseDampening() != NEUTRAL.baseDampening(), "WRAPPER_SGD");
      unused(variant, "base_nesterov", h.baseNesterov() != NEUTRAL.baseNesterov(), "WRAPPER_SGD");
    }
  }

  /** Warmup belongs to SGD, ADAMW and ADAMW_PAPER; each other variant says why it has none. */
  private static void checkWarmup(Variant variant, Hyperparameters h) {
    if (h.warmupSteps() < 0) {
      throw new HyperparameterException(
          "warmup_steps", "warmup_steps must be >= 0, got " + h.warmupSteps());
    }
    if (h.warmupSteps() == 0) {
      return;
    }
    String why =
        switch (variant) {
          case RADAM -> "RADAM rectifies its variance estimate instead of warming up";
          case WRAPPER_SGD, WRAPPER_ADAM ->
              variant
                  + " follows its base optimizer's learning rate; schedule that lr instead"
                  + " (UpdateHyperparameters)";
          default -> null;
        };
    if (why != null) {
      throw new HyperparameterException(
          "warmup_steps",
          "warmup_steps must be 0 (unset) for "
              + variant
              + ": "
              + why
              + "; got "
              + h.warmupSteps());
    }
  }

  /** torch.optim.SGD's own constructor rules. */
  private static void checkTorchSgd(Hyperparameters h) {
    double d = h.baseDampening();
    if (!(d >= 0 && d <= 1)) {
      throw new HyperparameterException(
          "base_dampening", "base_dampening must be in [0, 1], got " + d);
    }
    if (h.baseNesterov() && (h.baseMomentum() <= 0 || d != 0)) {
      throw new HyperparameterException(
          "base_nesterov",
          "base_nesterov requires base_momentum > 0 and base_dampening == 0 (torch.optim.SGD"
              + " rule), got base_momentum="
              + h.baseMomentum()
              + ", base_dampening="
              + d);
    }
  }

  private static void unused(Variant variant, String field, boolean set, String users) {
    if (set) {
      throw new HyperparameterException(
          field,
          field
              + " applies only to "
              + users
              + "; "
              + variant
              + " does not use it, so leave it unset (or at its default)");
    }
  }

  private static void positiveFinite(String field, double v) {
    if (!(v > 0 && Double.isFinite(v))) {
      throw new HyperparameterException(field, field + " must be finite and > 0, got " + v);
    }
  }

  private static void nonNegativeFinite(String field, double v) {
    if (!(v >= 0 && Double.isFinite(v))) {
      throw new HyperparameterException(field, field + " must be finite and >= 0, got " + v);
    }
  }

  /** [0, 1). */
  private static void unitInterval(String field, double v) {
    if (!(v >= 0 && v < 1)) {
      throw new HyperparameterException(field, field + " must be in [0, 1), got " + v);
    }
  }

  /** (0, 1). */
  private static void openUnitInterval(String field, double v) {
    if (!(v > 0 && v < 1)) {
      throw new HyperparameterException(field, field + " must be in (0, 1), got " + v);
    }
  }
}
