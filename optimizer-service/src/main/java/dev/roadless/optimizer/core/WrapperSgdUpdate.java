package dev.roadless.optimizer.core;

/**
 * {@code ScheduleFreeWrapperReference} around {@code torch.optim.SGD}: first {@code z -=
 * lr*weightDecayAtY*y}, then torch's single-tensor SGD step on z (L2 decay at z, momentum buffer
 * with dampening, Nesterov), then x and y by {@code lerp_}. The schedule uses the base lr with no
 * warmup of its own, and lr_max starts at 0.
 */
final class WrapperSgdUpdate implements BaseUpdate {

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
    return hp.baseMomentum() != 0;
  }

  @Override
  public void deriveY(float[] x, float[] z, int from, int to, float[] out, int at, double beta) {
    Interp.lerpY(x, z, from, to, out, at, beta);
  }

  @Override
  public Kernel kernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
    return new SgdKernel(hp, step, yBeta);
  }

  private static final class SgdKernel implements Kernel {
    private final boolean first;
    private final float wOld;
    private final float wC;
    private final float wNew;
    private final float negLrWdy;
    private final float wd;
    private final float momentum;
    private final float oneMinusDampening;
    private final float negLr;
    private final boolean decayAtY;
    private final boolean decay;
    private final boolean withMomentum;
    private final boolean nesterov;

    SgdKernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
      double lr = step.lrK();
      first = step.first();
      wOld = (float) (1 - yBeta);
      wC = (float) step.ck();
      wNew = (float) (1 - hp.beta());
      negLrWdy = (float) -(lr * hp.weightDecayAtY());
      wd = (float) hp.weightDecay();
      momentum = (float) hp.baseMomentum();
      oneMinusDampening = (float) (1 - hp.baseDampening());
      negLr = (float) -lr;
      decayAtY = hp.weightDecayAtY() != 0;
      decay = hp.weightDecay() != 0;
      withMomentum = hp.baseMomentum() != 0;
      nesterov = hp.baseNesterov();
    }

    @Override
    public void apply(TensorBuffers t, float[] g, float[] y, int from, int to) {
      final float[] z = t.z;
      final float[] x = t.x;
      final boolean writeY = y != null;
      final float[] yo = writeY ? y : x; // stored to only when writeY
      final float[] m = t.m;
      for (int i = from; i < to; i++) {
        float xi = x[i];
        float zi = z[i];
        float gi = g[i];
        if (decayAtY) {
          float yi = first ? xi : Interp.lerp(xi, zi, wOld);
          zi = Math.fma(negLrWdy, yi, zi); // z.sub_(y, alpha=lr*wd_at_y)
        }
        if (decay) {
          gi = Math.fma(wd, zi, gi); // grad.add(param, alpha=weight_decay)
        }
        if (withMomentum) {
          // torch clones the gradient into a missing buffer on the first step.
          float buf = first ? gi : Math.fma(oneMinusDampening, gi, m[i] * momentum);
          m[i] = buf;
          gi = nesterov ? Math.fma(momentum, buf, gi) : buf;
        }
        zi = Math.fma(negLr, gi, zi); // param.add_(grad, alpha=-lr)
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
