package dev.roadless.optimizer.core;

/**
 * {@code ScheduleFreeWrapperReference} around {@code torch.optim.Adam}: first {@code z -=
 * lr*weightDecayAtY*y}, then torch's single-tensor Adam step on z ({@code exp_avg.lerp_}, {@code
 * denom = sqrt(exp_avg_sq)/sqrt(bc2) + eps}, {@code z.addcdiv_(exp_avg, denom, -lr/bc1)}), then x
 * and y by {@code lerp_}. Adam's L2 {@code weight_decay} acts at z.
 */
final class WrapperAdamUpdate implements BaseUpdate {
  /** A float32 counter stops at 2^24: 2^24 + 1 rounds back to 2^24. */
  private static final long FLOAT_COUNTER_LIMIT = 1L << 24;

  @Override
  public double scheduledLr(Hyperparameters hp, long k) {
    return hp.lr();
  }

  @Override
  public double initialLrMax() {
    return 0.0;
  }

  @Override
  public boolean hasFirstMoment(Hyperparameters hp) {
    return true;
  }

  @Override
  public void deriveY(float[] x, float[] z, int from, int to, float[] out, int at, double beta) {
    Interp.lerpY(x, z, from, to, out, at, beta);
  }

  /**
   * torch Adam's {@code step} after step k: a float32 tensor incremented from 0, so it is k+1 until
   * it saturates at 2^24. Derived from k rather than stored.
   */
  static double adamStep(long k) {
    return Math.min(k + 1, FLOAT_COUNTER_LIMIT);
  }

  @Override
  public Kernel kernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
    return new AdamKernel(hp, step, yBeta);
  }

  private static final class AdamKernel implements Kernel {
    private final boolean first;
    private final float wOld;
    private final float wC;
    private final float wNew;
    private final float negLrWdy;
    private final float wd;
    private final float oneMinusBeta1;
    private final float beta2;
    private final float oneMinusBeta2;
    private final float bc2Sqrt;
    private final float eps;
    private final float negStepSize;
    private final boolean decayAtY;
    private final boolean decay;

    AdamKernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
      double lr = step.lrK();
      double s = adamStep(step.k());
      first = step.first();
      wOld = (float) (1 - yBeta);
      wC = (float) step.ck();
      wNew = (float) (1 - hp.beta());
      negLrWdy = (float) -(lr * hp.weightDecayAtY());
      wd = (float) hp.weightDecay();
      oneMinusBeta1 = (float) (1 - hp.baseMomentum());
      beta2 = (float) hp.beta2();
      oneMinusBeta2 = (float) (1 - hp.beta2());
      bc2Sqrt = (float) Math.sqrt(1 - Math.pow(hp.beta2(), s));
      eps = (float) hp.eps();
      negStepSize = (float) -(lr / (1 - Math.pow(hp.baseMomentum(), s)));
      decayAtY = hp.weightDecayAtY() != 0;
      decay = hp.weightDecay() != 0;
    }

    @Override
    public void apply(TensorBuffers t, float[] g, float[] y, int from, int to) {
      final float[] z = t.z;
      final float[] x = t.x;
      final boolean writeY = y != null;
      final float[] yo = writeY ? y : x; // stored to only when writeY
      final float[] m = t.m;
      final float[] v = t.v;
      for (int i = from; i < to; i++) {
        float xi = x[i];
        float zi = z[i];
        float gi = g[i];
        if (decayAtY) {
          float yi = first ? xi : Interp.lerp(xi, zi, wOld);
          zi = Math.fma(negLrWdy, yi, zi);
        }
        if (decay) {
          gi = Math.fma(wd, zi, gi); // grad.add(param, alpha=weight_decay)
        }
        float mi = Interp.lerp(m[i], gi, oneMinusBeta1); // exp_avg.lerp_(grad, 1-beta1)
        float vi = Math.fma(oneMinusBeta2 * gi, gi, v[i] * beta2);
        m[i] = mi;
        v[i] = vi;
        float d = (float) Math.sqrt(vi) / bc2Sqrt + eps;
        zi = zi + (negStepSize * mi) / d; // param.addcdiv_(exp_avg, denom, value=-step_size)
        xi = Interp.lerp(xi, zi, wC);
        z[i] = zi;
        x[i] = xi;
        if (writeY) {
          yo[i] = Interp.lerp(xi, zi, wNew);
        }
      }
    }
  }
}
