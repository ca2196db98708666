package dev.roadless.optimizer.core;

/**
 * The float32 interpolations of the reference classes, following golden/FORMAT.md section 2.
 *
 * <p>The Schedule-Free reference classes form x and y with {@code mul} then {@code add_(alpha)},
 * which PyTorch fuses: {@code fma(f(1-b), z, x*f(b))}. The wrapper uses {@code lerp_}, whose result
 * depends on which side of 0.5 the weight lies.
 */
final class Interp {
  private Interp() {}

  /** {@code x.mul(b).add_(z, alpha=1-b)} in float32. */
  static float fmaForm(float x, float z, float b, float oneMinusB) {
    return Math.fma(oneMinusB, z, x * b);
  }

  /** {@code a.lerp_(b, w)} in float32 for a weight already rounded to float. */
  static float lerp(float a, float b, float w) {
    float d = b - a;
    return Math.abs(w) < 0.5f ? Math.fma(w, d, a) : Math.fma(w - 1f, d, b);
  }

  /**
   * y = beta*x + (1-beta)*z in the reference classes' form, for elements [from, to), written to
   * {@code out} from index {@code at} on.
   */
  static void fmaY(float[] x, float[] z, int from, int to, float[] out, int at, double beta) {
    float b = (float) beta;
    float ob = (float) (1 - beta);
    int shift = at - from;
    // Vectorized as the kernel forms y (one rounding per lane, the same as Math.fma): the server
    // derives y this way for every answer, so a scalar loop would cost more than the copy it saves.
    int i = Finite.VECTOR ? VectorScan.fmaY(x, z, from, to, out, shift, b, ob) : from;
    for (; i < to; i++) {
      out[i + shift] = Math.fma(ob, z[i], x[i] * b);
    }
  }

  /** y = x.lerp(z, 1-beta), the wrappers' form, for elements [from, to), as {@link #fmaY}. */
  static void lerpY(float[] x, float[] z, int from, int to, float[] out, int at, double beta) {
    float w = (float) (1 - beta);
    int shift = at - from;
    int i = Finite.VECTOR ? VectorScan.lerpY(x, z, from, to, out, shift, w) : from;
    for (; i < to; i++) {
      out[i + shift] = lerp(x[i], z[i], w);
    }
  }
}
