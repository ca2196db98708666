package dev.roadless.optimizer.core;

/**
 * AdamW-SF in the {@code AdamWScheduleFreeReference} op order (upstream 1.3 and later): decay z at
 * y (or z), then {@code v = beta2*v + (1-beta2)*g^2}, {@code d = sqrt(v/bc2) + eps}, {@code z -=
 * lr_k * u/d} with u = g, or the bias-corrected first moment when inner momentum is on.
 */
final class AdamWUpdate implements BaseUpdate {

  @Override
  public double scheduledLr(Hyperparameters hp, long k) {
    return hp.lr() * Schedule.warmupFactor(k, hp.warmupSteps());
  }

  @Override
  public boolean hasFirstMoment(Hyperparameters hp) {
    return hp.innerMomentum() != 0;
  }

  @Override
  public Kernel kernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
    return new AdamWKernel(Averaging.of(step, yBeta, hp.beta()), hp, step);
  }

  /** Fields package-private for {@link VectorKernels#adamW}. */
  static final class AdamWKernel implements Kernel {
    final Averaging a;
    final float negLr;
    final float negLrWd;
    final float beta2;
    final float oneMinusBeta2;
    final float bc2;
    final float eps;
    final float m0;
    final float oneMinusM0;
    final float bc1;
    final boolean decayAtY;
    final boolean decayAtZ;
    final boolean inner;

    AdamWKernel(Averaging a, Hyperparameters hp, Schedule.Step step) {
      long t = step.k() + 1;
      double lr = step.lrK();
      this.a = a;
      this.negLr = (float) -lr;
      this.negLrWd = (float) -(lr * hp.weightDecay());
      this.beta2 = (float) hp.beta2();
      this.oneMinusBeta2 = (float) (1 - hp.beta2());
      this.bc2 = (float) (1 - Math.pow(hp.beta2(), t));
      this.eps = (float) hp.eps();
      this.m0 = (float) hp.innerMomentum();
      this.oneMinusM0 = (float) (1 - hp.innerMomentum());
      this.bc1 = (float) (1 - Math.pow(hp.innerMomentum(), t));
      boolean decay = hp.weightDecay() != 0;
      this.decayAtY = decay && !hp.decayAtZ();
      this.decayAtZ = decay && hp.decayAtZ();
      this.inner = hp.innerMomentum() != 0;
    }

    @Override
    public boolean applyChecked(TensorBuffers t, float[] g, float[] y, int from, int to) {
      return Finite.VECTOR
          ? VectorKernels.adamW(this, t, g, y, from, to)
          : Kernel.super.applyChecked(t, g, y, from, to);
    }

    @Override
    public void apply(TensorBuffers t, float[] g, float[] y, int from, int to) {
      final float[] z = t.z;
      final float[] x = t.x;
      final boolean writeY = y != null;
      final float[] yo = writeY ? y : x; // stored to only when writeY
      final float[] v = t.v;
      final float[] m = inner ? t.m : v; // a non-null stand-in, touched only when inner
      final float ox = a.oldX(), oz = a.oldZ(), cx = a.cX(), cz = a.cZ();
      final float nx = a.newX(), nz = a.newZ();
      final float negLr = this.negLr, negLrWd = this.negLrWd, b2 = beta2, ob2 = oneMinusBeta2;
      final float bc2 = this.bc2, eps = this.eps, m0 = this.m0, om0 = oneMinusM0, bc1 = this.bc1;
      final boolean decayAtY = this.decayAtY, decayAtZ = this.decayAtZ, inner = this.inner;
      for (int i = from; i < to; i++) {
        float xi = x[i];
        float zi = z[i];
        float gi = g[i];
        if (decayAtY) {
          zi = Math.fma(negLrWd, Math.fma(oz, zi, xi * ox), zi);
        }
        if (decayAtZ) {
          zi = Math.fma(negLrWd, zi, zi);
        }
        float vi = Math.fma(ob2 * gi, gi, v[i] * b2);
        v[i] = vi;
        float d = (float) Math.sqrt(vi / bc2) + eps;
        float u = gi;
        if (inner) {
          float mi = Math.fma(om0, gi, m[i] * m0);
          m[i] = mi;
          u = mi / bc1;
        }
        zi = zi + (negLr * u) / d; // z.addcdiv_(u, d, value=-lr)
        xi = Math.fma(cz, zi, xi * cx);
        z[i] = zi;
        x[i] = xi;
        if (writeY) {
          yo[i] = Math.fma(nz, zi, xi * nx);
        }
      }
    }
  }
}
