package dev.roadless.optimizer.core;

/**
 * PyTorch's float32 in-place ops, one whole array at a time, as golden/FORMAT.md section 2
 * describes them. {@code s} is a double scalar; {@code f(s)} is it rounded to float.
 */
final class TorchOps {
  private TorchOps() {}

  /** {@code a.add_(b, alpha=s)}. */
  static void add(float[] a, float[] b, double s) {
    float fs = (float) s;
    for (int i = 0; i < a.length; i++) {
      a[i] = Math.fma(fs, b[i], a[i]);
    }
  }

  /** {@code a.mul_(s)}. */
  static void mul(float[] a, double s) {
    for (int i = 0; i < a.length; i++) {
      a[i] = a[i] * (float) s;
    }
  }

  /** {@code a.div_(s)}. */
  static void div(float[] a, double s) {
    for (int i = 0; i < a.length; i++) {
      a[i] = a[i] / (float) s;
    }
  }

  /** {@code a.div_(b)}. */
  static void div(float[] a, float[] b) {
    for (int i = 0; i < a.length; i++) {
      a[i] = a[i] / b[i];
    }
  }

  /** {@code a.add_(s)}. */
  static void addScalar(float[] a, double s) {
    for (int i = 0; i < a.length; i++) {
      a[i] = a[i] + (float) s;
    }
  }

  /** {@code a.sqrt_()}, IEEE (torch's MKL sqrt is off by 1 ulp in some elements). */
  static void sqrt(float[] a) {
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) Math.sqrt(a[i]);
    }
  }

  /** {@code a.addcmul_(t1, t2, value=s)}. */
  static void addcmul(float[] a, float[] t1, float[] t2, double s) {
    for (int i = 0; i < a.length; i++) {
      a[i] = Math.fma((float) s * t1[i], t2[i], a[i]);
    }
  }

  /** {@code a.addcdiv_(t1, t2, value=s)}. */
  static void addcdiv(float[] a, float[] t1, float[] t2, double s) {
    for (int i = 0; i < a.length; i++) {
      a[i] = a[i] + ((float) s * t1[i]) / t2[i];
    }
  }

  /** {@code a.lerp_(b, w)}. */
  static void lerp(float[] a, float[] b, double w) {
    float fw = (float) w;
    for (int i = 0; i < a.length; i++) {
      float d = b[i] - a[i];
      a[i] = Math.abs(fw) < 0.5f ? Math.fma(fw, d, a[i]) : Math.fma(fw - 1, d, b[i]);
    }
  }

  /** {@code (g_0 + ... + g_{R-1}) / R} in float32, left to right. */
  static float[] mean(float[][] replicas) {
    float[] s = replicas[0].clone();
    for (int r = 1; r < replicas.length; r++) {
      for (int i = 0; i < s.length; i++) {
        s[i] += replicas[r][i];
      }
    }
    if (replicas.length > 1) {
      div(s, replicas.length);
    }
    return s;
  }
}
