package dev.roadless.optimizer.core;

/**
 * RAdam-SF ({@code RAdamScheduleFree}): the rectification term replaces warmup. While {@code rho_t
 * <= 4} the step is plain SGD at the full rate, or nothing at all in the silent phase (lr_k = 0, so
 * c = 0 and only v moves). After that {@code u = g/(sqrt(v/bc2) + eps)} at {@code lr*rect}.
 */
final class RAdamUpdate implements BaseUpdate {

  @Override
  public double scheduledLr(Hyperparameters hp, long k) {
    return hp.lr() * rect(hp, k + 1);
  }

  @Override
  public boolean hasFirstMoment(Hyperparameters hp) {
    return false;
  }

  @Override
  public Kernel kernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
    return new RAdamKernel(Averaging.of(step, yBeta, hp.beta()), hp, step);
  }

  /** rho_t for step t = k+1, in upstream's order of operations. */
  static double rhoT(double beta2, long t) {
    double beta2T = Math.pow(beta2, t);
    double bc2 = 1 - beta2T;
    double rhoInf = 2 / (1 - beta2) - 1;
    return rhoInf - 2 * t * beta2T / bc2;
  }

  /** The rectification factor; 0 or 1 (silent or not) before the variance estimate is usable. */
  static double rect(Hyperparameters hp, long t) {
    double rhoT = rhoT(hp.beta2(), t);
    if (!(rhoT > 4.0)) {
      return hp.silentSgdPhase() ? 0.0 : 1.0;
    }
    double rhoInf = 2 / (1 - hp.beta2()) - 1;
    return Math.sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
  }

  private static final class RAdamKernel implements Kernel {
    private final Averaging a;
    private final float negLr;
    private final float wd;
    private final float beta2;
    private final float oneMinusBeta2;
    private final float bc2;
    private final float eps;
    private final boolean decay;
    private final boolean adaptive;

    RAdamKernel(Averaging a, Hyperparameters hp, Schedule.Step step) {
      long t = step.k() + 1;
      this.a = a;
      this.negLr = (float) -step.lrK();
      this.wd = (float) hp.weightDecay();
      this.beta2 = (float) hp.beta2();
      this.oneMinusBeta2 = (float) (1 - hp.beta2());
      this.bc2 = (float) (1 - Math.pow(hp.beta2(), t));
      this.eps = (float) hp.eps();
      this.decay = hp.weightDecay() != 0;
      this.adaptive = rhoT(hp.beta2(), t) > 4.0;
    }

    @Override
    public void apply(TensorBuffers t, float[] g, float[] y, int from, int to) {
      final float[] z = t.z;
      final float[] x = t.x;
      final boolean writeY = y != null;
      final float[] yo = writeY ? y : x; // stored to only when writeY
      final float[] v = t.v;
      final float ox = a.oldX(), oz = a.oldZ(), cx = a.cX(), cz = a.cZ();
      final float nx = a.newX(), nz = a.newZ();
      final float negLr = this.negLr, wd = this.wd, b2 = beta2, ob2 = oneMinusBeta2;
      final float bc2 = this.bc2, eps = this.eps;
      final boolean decay = this.decay, adaptive = this.adaptive;
      for (int i = from; i < to; i++) {
        float xi = x[i];
        float zi = z[i];
        float gi = g[i];
        float vi = Math.fma(ob2 * gi, gi, v[i] * b2);
        v[i] = vi;
        float u = gi;
        if (adaptive) {
          u = gi / ((float) Math.sqrt(vi / bc2) + eps);
        }
        if (decay) {
          u = Math.fma(wd, Math.fma(oz, zi, xi * ox), u);
        }
        zi = Math.fma(negLr, u, zi);
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
