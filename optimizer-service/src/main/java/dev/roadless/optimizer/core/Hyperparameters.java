package dev.roadless.optimizer.core;

/**
 * Every hyperparameter of one parameter group, immutable. Build one with {@link #defaults(Variant)}
 * and {@link #toBuilder()}; check it with {@link #validate(Variant)}.
 *
 * <p>Not every field applies to every variant. {@link #validate(Variant)} treats the fields a
 * variant does not use one way for every variant: each must keep its neutral value (the {@link
 * Builder}'s default); any other value is refused ({@link HyperparameterException} naming it),
 * never silently ignored.
 *
 * @param lr learning rate. For the wrappers this is the base optimizer's {@code lr}.
 * @param beta interpolation weight between x and z: {@code momentum} for SGD and the wrappers,
 *     {@code betas[0]} for the Adam types
 * @param beta2 {@code betas[1]} for the Adam types (including the base of {@link
 *     Variant#WRAPPER_ADAM})
 * @param eps term added outside the square root (Adam types)
 * @param weightDecay L2 decay. Schedule-Free variants decay at y (or at z with {@link #decayAtZ});
 *     for the wrappers it is the base optimizer's {@code weight_decay}, which acts at z
 * @param warmupSteps linear warmup length W; 0 means none. Not for RAdam or the wrappers
 * @param r polynomial weighting power of the average, {@code (k+1)^r}
 * @param weightLrPower power of {@code lr_max} in the averaging weight
 * @param innerMomentum AdamW-SF first-moment momentum; 0 means no first moment ({@link
 *     Variant#ADAMW} only)
 * @param decayAtZ compute the decay at z instead of y ({@link Variant#ADAMW} only)
 * @param silentSgdPhase RAdam: do nothing (rather than plain SGD) before rectification starts
 * @param weightDecayAtY the wrappers' decay of z, computed at y: {@code z -= lr*lambda*y}
 * @param baseMomentum the wrapped optimizer's momentum: torch SGD {@code momentum}, or Adam {@code
 *     betas[0]}
 * @param baseDampening torch SGD {@code dampening} ({@link Variant#WRAPPER_SGD} only)
 * @param baseNesterov torch SGD {@code nesterov} ({@link Variant#WRAPPER_SGD} only)
 */
public record Hyperparameters(
    double lr,
    double beta,
    double beta2,
    double eps,
    double weightDecay,
    long warmupSteps,
    double r,
    double weightLrPower,
    double innerMomentum,
    boolean decayAtZ,
    boolean silentSgdPhase,
    double weightDecayAtY,
    double baseMomentum,
    double baseDampening,
    boolean baseNesterov) {

  /** The upstream constructor defaults of the variant (torch's for the wrapped optimizer). */
  public static Hyperparameters defaults(Variant variant) {
    Builder b = new Builder();
    switch (variant) {
      case SGD -> b.lr(1.0);
      case ADAMW, ADAMW_PAPER, RADAM -> b.lr(0.0025);
      case WRAPPER_SGD -> b.lr(1e-3);
      case WRAPPER_ADAM -> b.lr(1e-3).baseMomentum(0.9);
    }
    return b.build();
  }

  /** A builder preset to the values of this instance. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /** A copy with another learning rate; the common live change. */
  public Hyperparameters withLr(double newLr) {
    return toBuilder().lr(newLr).build();
  }

  /**
   * Checks every field against the ranges the variant accepts.
   *
   * @throws IllegalArgumentException naming the first offending field and its allowed range
   */
  public void validate(Variant variant) {
    HyperparameterRules.check(variant, this);
  }

  /** Mutable builder; every setter returns {@code this}. Starts from the SGD defaults. */
  public static final class Builder {
    private double lr = 1.0;
    private double beta = 0.9;
    private double beta2 = 0.999;
    private double eps = 1e-8;
    private double weightDecay;
    private long warmupSteps;
    private double r;
    private double weightLrPower = 2.0;
    private double innerMomentum;
    private boolean decayAtZ;
    private boolean silentSgdPhase = true;
    private double weightDecayAtY;
    private double baseMomentum;
    private double baseDampening;
    private boolean baseNesterov;

    public Builder() {}

    private Builder(Hyperparameters h) {
      lr = h.lr;
      beta = h.beta;
      beta2 = h.beta2;
      eps = h.eps;
      weightDecay = h.weightDecay;
      warmupSteps = h.warmupSteps;
      r = h.r;
      weightLrPower = h.weightLrPower;
      innerMomentum = h.innerMomentum;
      decayAtZ = h.decayAtZ;
      silentSgdPhase = h.silentSgdPhase;
      weightDecayAtY = h.weightDecayAtY;
      baseMomentum = h.baseMomentum;
      baseDampening = h.baseDampening;
      baseNesterov = h.baseNesterov;
    }

    public Builder lr(double v) {
      lr = v;
      return this;
    }

    public Builder beta(double v) {
      beta = v;
      return this;
    }

    public Builder beta2(double v) {
      beta2 = v;
      return this;
    }

    public Builder eps(double v) {
      eps = v;
      return this;
    }

    public Builder weightDecay(double v) {
      weightDecay = v;
      return this;
    }

    public Builder warmupSteps(long v) {
      warmupSteps = v;
      return this;
    }

    public Builder r(double v) {
      r = v;
      return this;
    }

    public Builder weightLrPower(double v) {
      weightLrPower = v;
      return this;
    }

    public Builder innerMomentum(double v) {
      innerMomentum = v;
      return this;
    }

    public Builder decayAtZ(boolean v) {
      decayAtZ = v;
      return this;
    }

    public Builder silentSgdPhase(boolean v) {
      silentSgdPhase = v;
      return this;
    }

    public Builder weightDecayAtY(double v) {
      weightDecayAtY = v;
      return this;
    }

    public Builder baseMomentum(double v) {
      baseMomentum = v;
      return this;
    }

    public Builder baseDampening(double v) {
      baseDampening = v;
      return this;
    }

    public Builder baseNesterov(boolean v) {
      baseNesterov = v;
      return this;
    }

    /** Builds the value; does not validate (see {@link Hyperparameters#validate(Variant)}). */
    public Hyperparameters build() {
      return new Hyperparameters(
          lr,
          beta,
          beta2,
          eps,
          weightDecay,
          warmupSteps,
          r,
          weightLrPower,
          innerMomentum,
          decayAtZ,
          silentSgdPhase,
          weightDecayAtY,
          baseMomentum,
          baseDampening,
          baseNesterov);
    }
  }
}
