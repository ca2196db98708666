package dev.roadless.optimizer.core;

/** SGD-SF ({@code SGDScheduleFreeReference} op order): {@code g += wd*y; z -= lr_k*g}. */
final class SgdUpdate implements BaseUpdate {

  @Override
  public double scheduledLr(Hyperparameters hp, long k) {
    return hp.lr() * Schedule.warmupFactor(k, hp.warmupSteps());
  }

  @Override
  public boolean hasFirstMoment(Hyperparameters hp) {
    return false;
  }

  @Override
  public Kernel kernel(Hyperparameters hp, Schedule.Step step, double yBeta) {
    return new SgdKernel(Averaging.of(step, yBeta, hp.beta()), step.lrK(), hp.weightDecay());
  }

  /** Fields package-private for {@link VectorKernels#sgd}. */
  static final class SgdKernel implements Kernel {
    final Averaging a;
    final float negLr;
    final float wd;
    final boolean decay;

    SgdKernel(Averaging a, double lr, double weightDecay) {
      this.a = a;
      this.negLr = (float) -lr;
      this.wd = (float) weightDecay;
      this.decay = weightDecay != 0;
    }

    @Override
    public boolean applyChecked(TensorBuffers t, float[] g, float[] y, int from, int to) {
      return Finite.VECTOR
          ? VectorKernels.sgd(this, t, g, y, from, to)
          : Kernel.super.applyChecked(t, g, y, from, to);
    }

    @Override
    public void apply(TensorBuffers t, float[] g, float[] y, int from, int to) {
      final float[] z = t.z;
      final float[] x = t.x;
      final boolean writeY = y != null;
      final float[] yo = writeY ? y : x; // stored to only when writeY
      final float ox = a.oldX(), oz = a.oldZ(), cx = a.cX(), cz = a.cZ();
      final float nx = a.newX(), nz = a.newZ(), negLr = this.negLr, wd = this.wd;
      final boolean decay = this.decay;
      for (int i = from; i < to; i++) {
        float xi = x[i];
        float zi = z[i];
        float gi = g[i];
        if (decay) {
          gi = Math.fma(wd, Math.fma(oz, zi, xi * ox), gi); // grad.add_(y, alpha=wd)
        }
        zi = Math.fma(negLr, gi, zi); // z.sub_(grad, alpha=lr)
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
