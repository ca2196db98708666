package dev.roadless.optimizer.core;

/**
 * Float32 coefficients of the reference form's three interpolations for one step:
 *
 * <pre>
 *   y_old = fma(oldZ, z, x*oldX)      the point the gradient was taken at
 *   x     = fma(cZ,   z, x*cX)        x.mul_(1-c).add_(z, alpha=c)
 *   y_new = fma(newZ, z, x*newX)      x.mul(beta).add_(z, alpha=1-beta)
 * </pre>
 *
 * On a group's first step y_old must be the initial value exactly; (oldX, oldZ) = (1, 0) gives
 * exactly x there because x == z, so 0*z has x's sign even for a zero.
 */
record Averaging(float oldX, float oldZ, float cX, float cZ, float newX, float newZ) {

  static Averaging of(Schedule.Step step, double yBeta, double beta) {
    float ox = step.first() ? 1f : (float) yBeta;
    float oz = step.first() ? 0f : (float) (1 - yBeta);
    double c = step.ck();
    return new Averaging(ox, oz, (float) (1 - c), (float) c, (float) beta, (float) (1 - beta));
  }
}
