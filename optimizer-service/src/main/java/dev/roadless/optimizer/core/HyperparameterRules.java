package dev.roadless.optimizer.core;

/** Range checks behind {@link Hyperparameters#validate(Variant)}; one message per field. */
final class HyperparameterRules {
  private HyperparameterRules() {}

  static void check(Variant variant, Hyperparameters h) {
    if (variant == null) {
      throw new IllegalArgumentException("variant must not be null");
    }
    positiveFinite("lr", h.lr());
    unitInterval("beta", h.beta());
    nonNegativeFinite("weightDecay", h.weightDecay());
    if (!Double.isFinite(h.r())) {
      throw new IllegalArgumentException("r must be finite, got " + h.r());
    }
    // lr_max can be 0 (RAdam silent phase): a negative power would make the weight infinite.
    nonNegativeFinite("weightLrPower", h.weightLrPower());
    if (h.warmupSteps() < 0) {
      throw new IllegalArgumentException("warmupSteps must be >= 0, got " + h.warmupSteps());
    }
    if (variant.hasSecondMoment()) {
      openUnitInterval("beta2", h.beta2());
      positiveFinite("eps", h.eps());
    }
    checkVariantOnlyFields(variant, h);
    if (variant == Variant.WRAPPER_SGD) {
      checkTorchSgd(h);
    }
  }

  private static void checkVariantOnlyFields(Variant variant, Hyperparameters h) {
    if (variant == Variant.ADAMW) {
      unitInterval("innerMomentum", h.innerMomentum());
    } else {
      onlyFor(variant, "innerMomentum", h.innerMomentum() != 0, "ADAMW");
      onlyFor(variant, "decayAtZ", h.decayAtZ(), "ADAMW");
    }
    if (variant == Variant.RADAM || variant.isWrapper()) {
      if (h.warmupSteps() != 0) {
        throw new IllegalArgumentException(
            "warmupSteps must be 0 for "
                + variant
                + " (RAdam rectifies instead; a wrapper follows its base optimizer's lr), got "
                + h.warmupSteps());
      }
    }
    if (variant.isWrapper()) {
      nonNegativeFinite("weightDecayAtY", h.weightDecayAtY());
      unitInterval("baseMomentum", h.baseMomentum());
    } else {
      onlyFor(variant, "weightDecayAtY", h.weightDecayAtY() != 0, "WRAPPER_SGD, WRAPPER_ADAM");
      onlyFor(variant, "baseMomentum", h.baseMomentum() != 0, "WRAPPER_SGD, WRAPPER_ADAM");
    }
    if (variant != Variant.WRAPPER_SGD) {
      onlyFor(variant, "baseDampening", h.baseDampening() != 0, "WRAPPER_SGD");
      onlyFor(variant, "baseNesterov", h.baseNesterov(), "WRAPPER_SGD");
    }
  }

  /** torch.optim.SGD's own constructor rules. */
  private static void checkTorchSgd(Hyperparameters h) {
    double d = h.baseDampening();
    if (!(d >= 0 && d <= 1)) {
      throw new IllegalArgumentException("baseDampening must be in [0, 1], got " + d);
    }
    if (h.baseNesterov() && (h.baseMomentum() <= 0 || d != 0)) {
      throw new IllegalArgumentException(
          "baseNesterov requires baseMomentum > 0 and baseDampening == 0 (torch.optim.SGD rule),"
              + " got baseMomentum="
              + h.baseMomentum()
              + ", baseDampening="
              + d);
    }
  }

  private static void onlyFor(Variant variant, String field, boolean set, String allowed) {
    if (set) {
      throw new IllegalArgumentException(
          field + " applies only to " + allowed + " and must be left unset for " + variant);
    }
  }

  private static void positiveFinite(String field, double v) {
    if (!(v > 0 && Double.isFinite(v))) {
      throw new IllegalArgumentException(field + " must be finite and > 0, got " + v);
    }
  }

  private static void nonNegativeFinite(String field, double v) {
    if (!(v >= 0 && Double.isFinite(v))) {
      throw new IllegalArgumentException(field + " must be finite and >= 0, got " + v);
    }
  }

  /** [0, 1). */
  private static void unitInterval(String field, double v) {
    if (!(v >= 0 && v < 1)) {
      throw new IllegalArgumentException(field + " must be in [0, 1), got " + v);
    }
  }

  /** (0, 1). */
  private static void openUnitInterval(String field, double v) {
    if (!(v > 0 && v < 1)) {
      throw new IllegalArgumentException(field + " must be in (0, 1), got " + v);
    }
  }
}
