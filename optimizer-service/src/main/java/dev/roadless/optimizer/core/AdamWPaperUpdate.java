package dev.roadless.optimizer.core;

/**
 * AdamW-SF as published ({@code AdamWScheduleFreePaper}, upstream before 1.3): the bias correction
 * is folded into the rate, {@code lr_k = lr*s_k*sqrt(1-beta2^(k+1))}, which also feeds lr_max and
 * the weights; {@code d = sqrt(v) + eps}; {@code z -= lr_k*(g/d + wd*y)}.
 */
final class AdamWPaperUpdate implements BaseUpdate {

  @Override
  public double scheduledLr(Hyperparameters hp, long k) {
    double bc2 = 1 - Math.pow(hp.beta2(), k + 1);
    return hp.lr() * Schedule.warmupFactor(k, hp.warmupSteps()) * Math.sqrt(bc2);
  }

  @Override
  public boolean hasFirstMoment(Hyperparameters hp) {
    return false;
  }

  @Override
  public Kernel kernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
    return new PaperKernel(Averaging.of(step, yBeta, hp.beta()), hp, step.lrK());
  }

  private static final class PaperKernel implements Kernel {
    private final Averaging a;
    private final float negLr;
    private final float wd;
    private final float beta2;
    private final float oneMinusBeta2;
    private final float eps;
    private final boolean decay;

    PaperKernel(Averaging a, Hyperparameters hp, double lr) {
      this.a = a;
      this.negLr = (float) -lr;
      this.wd = (float) hp.weightDecay();
      this.beta2 = (float) hp.beta2();
      this.oneMinusBeta2 = (float) (1 - hp.beta2());
      this.eps = (float) hp.eps();
      this.decay = hp.weightDecay() != 0;
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
      final float eps = this.eps;
      final boolean decay = this.decay;
      for (int i = from; i < to; i++) {
        float xi = x[i];
        float zi = z[i];
        float gi = g[i];
        float vi = Math.fma(ob2 * gi, gi, v[i] * b2);
        v[i] = vi;
        float u = gi / ((float) Math.sqrt(vi) + eps);
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
