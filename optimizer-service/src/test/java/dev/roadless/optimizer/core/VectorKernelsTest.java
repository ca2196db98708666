package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The vector kernels with the folded state check ({@link Kernel#applyChecked}) against the scalar
 * kernels followed by the separate scan: the same bits in every array and the same verdict, for
 * every option of AdamW-SF and SGD-SF, blocks of every length and start around the vector width,
 * the first and later steps, and state that turns non-finite in each array at any position (tails
 * included).
 */
class VectorKernelsTest {
  private static final int[] LENGTHS = {1, 7, 15, 16, 17, 31, 64, 100, 4096, 4099};

  @Test
  void surefireRunsWithTheVectorModule() {
    assertTrue(Finite.VECTOR, "tests must run with --add-modules=jdk.incubator.vector");
  }

  @Test
  void adamW_everyOption_sameBitsAndVerdictAsScalarPlusScan() {
    for (Hyperparameters hp : adamWSettings()) {
      compare(Variant.ADAMW, hp, new Random(11));
    }
  }

  @Test
  void sgd_everyOption_sameBitsAndVerdictAsScalarPlusScan() {
    Hyperparameters base = Hyperparameters.defaults(Variant.SGD).withLr(0.05);
    for (Hyperparameters hp : List.of(base, base.toBuilder().weightDecay(0.1).build())) {
      compare(Variant.SGD, hp, new Random(12));
    }
  }

  @Test
  void yDerivations_vectorLoops_sameBitsAsTheScalarForms() {
    Random r = new Random(13);
    // beta on both sides of 0.5 (lerp's two branches), and the extremes.
    for (double beta : new double[] {0.9, 0.5, 0.25, 0.0, 1.0, 0.75}) {
      for (int n : LENGTHS) {
        float[] x = new float[n + 3];
        float[] z = new float[n + 3];
        for (int i = 0; i < x.length; i++) {
          x[i] = (float) r.nextGaussian() * (i % 5 == 0 ? 1e-30f : 1f);
          z[i] = (float) r.nextGaussian() * (i % 7 == 0 ? 1e30f : 1f);
        }
        float[] fma = new float[n + 5];
        float[] lerp = new float[n + 5];
        Interp.fmaY(x, z, 3, n + 3, fma, 2, beta);
        Interp.lerpY(x, z, 3, n + 3, lerp, 2, beta);
        float b = (float) beta;
        float ob = (float) (1 - beta);
        for (int i = 3; i < n + 3; i++) {
          String at = "beta=" + beta + " n=" + n + " i=" + i;
          assertEquals(Interp.fmaForm(x[i], z[i], b, ob), fma[i - 1], at);
          assertEquals(Interp.lerp(x[i], z[i], ob), lerp[i - 1], at);
        }
        // Written at [2, n + 2) only.
        for (float[] out : List.of(fma, lerp)) {
          assertEquals(0f, out[1]);
          assertEquals(0f, out[n + 2]);
        }
      }
    }
  }

  @Test
  void adamW_hugeFiniteGradient_vInfiniteWhileZAndXStayFinite_isCaught() {
    Hyperparameters hp = Hyperparameters.defaults(Variant.ADAMW).withLr(0.01);
    Kernel k = kernelAt(Variant.ADAMW, hp, 3);
    for (int n : LENGTHS) {
      for (int at : new int[] {0, n / 2, n - 1}) {
        TensorBuffers b = state(new Random(n), n, true, false);
        float[] g = new float[n];
        g[at] = 1e21f; // (1 - beta2)*g*g overflows: v = inf, g / (sqrt(inf) + eps) = 0
        assertFalse(k.applyChecked(b, g, null, 0, n), "n=" + n + " at=" + at);
        assertTrue(Float.isInfinite(b.v[at]));
        assertTrue(Float.isFinite(b.z[at]) && Float.isFinite(b.x[at]));
      }
    }
  }

  private static List<Hyperparameters> adamWSettings() {
    Hyperparameters base = Hyperparameters.defaults(Variant.ADAMW).withLr(0.01);
    List<Hyperparameters> out = new ArrayList<>();
    for (double wd : new double[] {0, 0.05}) {
      for (boolean atZ : new boolean[] {false, true}) {
        for (double inner : new double[] {0, 0.9}) {
          out.add(base.toBuilder().weightDecay(wd).decayAtZ(atZ).innerMomentum(inner).build());
        }
      }
    }
    return out;
  }

  private static void compare(Variant variant, Hyperparameters hp, Random rnd) {
    BaseUpdate update = BaseUpdate.of(variant);
    boolean withV = variant.hasSecondMoment();
    boolean withM = update.hasFirstMoment(hp);
    for (int k : new int[] {0, 1, 5}) {
      Kernel kernel = kernelAt(variant, hp, k);
      for (int n : LENGTHS) {
        for (int poison = -1; poison < 4; poison++) {
          for (boolean withY : new boolean[] {false, true}) {
            TensorBuffers a = state(rnd, n, withV, withM);
            int at = rnd.nextInt(n);
            float[] slot = poison == 0 ? a.z : poison == 1 ? a.x : poison == 2 ? a.v : a.m;
            if (poison >= 0 && slot != null) {
              slot[at] = poison % 2 == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
            }
            TensorBuffers b = copy(a);
            float[] g = new float[n];
            for (int i = 0; i < n; i++) {
              g[i] = (float) rnd.nextGaussian();
            }
            float[] ya = withY ? new float[n] : null;
            float[] yb = withY ? new float[n] : null;
            int from = poison < 0 ? rnd.nextInt(Math.min(n, 20)) : 0; // any vector alignment
            kernel.apply(a, g, ya, from, n);
            boolean expected = StateCheck.finite(a, from, n);
            boolean actual = kernel.applyChecked(b, g, yb, from, n);
            String what =
                variant + " " + hp + " k=" + k + " n=" + n + " from=" + from + " poison=" + poison;
            assertEquals(expected, actual, what);
            assertBits(a.z, b.z, what + " z");
            assertBits(a.x, b.x, what + " x");
            assertBits(a.v, b.v, what + " v");
            assertBits(a.m, b.m, what + " m");
            assertBits(ya, yb, what + " y");
          }
        }
      }
    }
  }

  private static Kernel kernelAt(Variant variant, Hyperparameters hp, int k) {
    BaseUpdate update = BaseUpdate.of(variant);
    Schedule s = new Schedule(update.initialLrMax());
    for (int i = 0; i < k; i++) {
      s.commit(s.next(update.scheduledLr(hp, s.k()), hp), hp.beta());
    }
    Schedule.Step step = s.next(update.scheduledLr(hp, s.k()), hp);
    return update.kernel(hp, step, s.yBeta());
  }

  private static TensorBuffers state(Random rnd, int n, boolean withV, boolean withM) {
    TensorBuffers b = TensorBuffers.allocate(n, withV, withM);
    for (int i = 0; i < n; i++) {
      b.z[i] = (float) rnd.nextGaussian();
      b.x[i] = (float) rnd.nextGaussian();
      if (withV) {
        b.v[i] = (float) rnd.nextDouble();
      }
      if (withM) {
        b.m[i] = (float) rnd.nextGaussian();
      }
    }
    return b;
  }

  private static TensorBuffers copy(TensorBuffers a) {
    return new TensorBuffers(
        a.z.clone(),
        a.x.clone(),
        a.v == null ? null : a.v.clone(),
        a.m == null ? null : a.m.clone());
  }

  private static void assertBits(float[] expected, float[] actual, String what) {
    if (expected == null) {
      assertEquals(null, actual, what);
      return;
    }
    int[] e = new int[expected.length];
    int[] a = new int[actual.length];
    for (int i = 0; i < e.length; i++) {
      e[i] = Float.floatToRawIntBits(expected[i]);
      a[i] = Float.floatToRawIntBits(actual[i]);
    }
    assertArrayEquals(e, a, what);
  }
}
