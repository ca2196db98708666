package dev.roadless.optimizer.core;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The AdamW-SF and SGD-SF kernels with the Vector API, the state check folded into the same pass:
 * every lane adds {@code z - z}, {@code x - x} and the moments' {@code v - v} to a vector
 * accumulator (0 for a finite value, NaN otherwise), reduced once per call. The scalar kernels plus
 * {@link StateCheck}'s separate scan read the block a second time; C2 on JDK 17 vectorizes no float
 * reduction, so a scalar accumulator in the kernel's own loop would cost the loop its
 * vectorization.
 *
 * <p>Bit-identical to the scalar kernels: every lane op ({@code mul}, {@code add}, {@code div},
 * {@code sqrt}, {@code fma}) is IEEE 754 correctly rounded exactly as {@code Math.fma} and the
 * scalar operators are, in the same order, and float {@code sqrt} equals {@code (float)
 * Math.sqrt(double)}. Loaded only when {@link Finite#VECTOR} is true.
 */
final class VectorKernels {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  /**
   * Where a float array's elements start in its object on 64-bit HotSpot with compressed class
   * pointers (the default); large arrays themselves start on a G1 region, so element {@code i} lies
   * at {@code 16 + 4i} bytes from a 64-byte boundary. Only the speed depends on it.
   */
  private static final int BASE_OFFSET = 16;

  /**
   * Elements from {@code from} before the first one whose vector lies on a whole vector boundary:
   * unaligned 512-bit loads and stores each span two cache lines.
   */
  private static int head(int from, int to) {
    int bytes = S.vectorByteSize();
    int misaligned = Math.floorMod(BASE_OFFSET + 4 * from, bytes);
    int head = misaligned == 0 ? 0 : (bytes - misaligned) / 4;
    return Math.min(head, to - from);
  }

  private VectorKernels() {}

  /**
   * {@link AdamWUpdate}'s kernel over [from, to); returns whether the new z, x, v, m are finite.
   */
  static boolean adamW(
      AdamWUpdate.AdamWKernel k, TensorBuffers t, float[] g, float[] y, int from, int to) {
    final float[] z = t.z;
    final float[] x = t.x;
    final float[] v = t.v;
    final boolean inner = k.inner;
    final float[] m = inner ? t.m : v;
    final boolean writeY = y != null;
    final Averaging a = k.a;
    final float ox = a.oldX(), oz = a.oldZ(), cx = a.cX(), cz = a.cZ();
    final float nx = a.newX(), nz = a.newZ();
    final float negLr = k.negLr, negLrWd = k.negLrWd, b2 = k.beta2, ob2 = k.oneMinusBeta2;
    final float bc2 = k.bc2, eps = k.eps, m0 = k.m0, om0 = k.oneMinusM0, bc1 = k.bc1;
    final boolean decayAtY = k.decayAtY, decayAtZ = k.decayAtZ;
    final FloatVector vOz = FloatVector.broadcast(S, oz),
        vNegLrWd = FloatVector.broadcast(S, negLrWd);
    final FloatVector vOm0 = FloatVector.broadcast(S, om0), vCz = FloatVector.broadcast(S, cz);
    final FloatVector vNz = FloatVector.broadcast(S, nz);
    float s = 0;
    int head = head(from, to);
    if (head > 0) {
      k.apply(t, g, y, from, from + head);
      s = StateCheck.finite(t, from, from + head) ? 0f : Float.NaN;
    }
    FloatVector acc = FloatVector.zero(S);
    int i = from + head;
    for (int upper = i + S.loopBound(to - i); i < upper; i += S.length()) {
      FloatVector xi = FloatVector.fromArray(S, x, i);
      FloatVector zi = FloatVector.fromArray(S, z, i);
      FloatVector gi = FloatVector.fromArray(S, g, i);
      if (decayAtY) {
        zi = zi.fma(vOz, xi.mul(ox)).fma(vNegLrWd, zi);
      }
      if (decayAtZ) {
        zi = zi.fma(vNegLrWd, zi);
      }
      FloatVector vi = gi.mul(ob2).fma(gi, FloatVector.fromArray(S, v, i).mul(b2));
      vi.intoArray(v, i);
      FloatVector d = vi.div(bc2).sqrt().add(eps);
      FloatVector u = gi;
      if (inner) {
        FloatVector mi = gi.fma(vOm0, FloatVector.fromArray(S, m, i).mul(m0));
        mi.intoArray(m, i);
        acc = acc.add(mi.sub(mi));
        u = mi.div(bc1);
      }
      zi = zi.add(u.mul(negLr).div(d));
      xi = zi.fma(vCz, xi.mul(cx));
      zi.intoArray(z, i);
      xi.intoArray(x, i);
      if (writeY) {
        zi.fma(vNz, xi.mul(nx)).intoArray(y, i);
      }
      acc = acc.add(zi.sub(zi)).add(xi.sub(xi)).add(vi.sub(vi));
    }
    s += acc.reduceLanes(VectorOperators.ADD);
    if (i < to) {
      k.apply(t, g, y, i, to);
      s += StateCheck.finite(t, i, to) ? 0f : Float.NaN;
    }
    return s == 0;
  }

  /** {@link SgdUpdate}'s kernel over [from, to); returns whether the new z and x are finite. */
  static boolean sgd(
      SgdUpdate.SgdKernel k, TensorBuffers t, float[] g, float[] y, int from, int to) {
    final float[] z = t.z;
    final float[] x = t.x;
    final boolean writeY = y != null;
    final Averaging a = k.a;
    final float ox = a.oldX(), oz = a.oldZ(), cx = a.cX(), cz = a.cZ();
    final float nx = a.newX(), nz = a.newZ(), negLr = k.negLr, wd = k.wd;
    final boolean decay = k.decay;
    final FloatVector vOz = FloatVector.broadcast(S, oz), vWd = FloatVector.broadcast(S, wd);
    final FloatVector vNegLr = FloatVector.broadcast(S, negLr), vCz = FloatVector.broadcast(S, cz);
    final FloatVector vNz = FloatVector.broadcast(S, nz);
    float s = 0;
    int head = head(from, to);
    if (head > 0) {
      k.apply(t, g, y, from, from + head);
      s = StateCheck.finite(t, from, from + head) ? 0f : Float.NaN;
    }
    FloatVector acc = FloatVector.zero(S);
    int i = from + head;
    for (int upper = i + S.loopBound(to - i); i < upper; i += S.length()) {
      FloatVector xi = FloatVector.fromArray(S, x, i);
      FloatVector zi = FloatVector.fromArray(S, z, i);
      FloatVector gi = FloatVector.fromArray(S, g, i);
      if (decay) {
        gi = zi.fma(vOz, xi.mul(ox)).fma(vWd, gi);
      }
      zi = gi.fma(vNegLr, zi);
      xi = zi.fma(vCz, xi.mul(cx));
      zi.intoArray(z, i);
      xi.intoArray(x, i);
      if (writeY) {
        zi.fma(vNz, xi.mul(nx)).intoArray(y, i);
      }
      acc = acc.add(zi.sub(zi)).add(xi.sub(xi));
    }
    s += acc.reduceLanes(VectorOperators.ADD);
    if (i < to) {
      k.apply(t, g, y, i, to);
      s += StateCheck.finite(t, i, to) ? 0f : Float.NaN;
    }
    return s == 0;
  }
}
