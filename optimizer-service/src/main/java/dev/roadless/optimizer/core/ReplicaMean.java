package dev.roadless.optimizer.core;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The data-parallel mean gradient {@code (g_0 + g_1 + ... + g_{R-1}) / R}: summed left to right in
 * replica order in float32, then divided by R in float32, so it never depends on arrival order and
 * R = 1 gives exactly g. This is the only implementation of that mean; where a replica's gradient
 * lies (the server's arrays, a shared-memory segment) is an {@link Input} to it.
 *
 * <p>Main-memory traffic is one read per replica and one write of the mean: arrays are summed in
 * place, chunk by chunk; when some replica must be read (a mapped segment), each block goes through
 * a small per-thread block that stays in cache, and is checked there when asked.
 */
public final class ReplicaMean {
  /** {@link #into}'s answer when every element of the mean is finite. */
  public static final long FINITE = -1;

  /** Floats per block: the output's block and the next replica's stay in L1/L2 (32 KB each). */
  private static final int BLOCK = 8192;

  /** Per thread: the block of the next replica to add. */
  private static final ThreadLocal<float[]> NEXT = ThreadLocal.withInitial(() -> new float[BLOCK]);

  private ReplicaMean() {}

  /** One replica's gradient as the mean reads it, tensor by tensor in the optimizer's order. */
  public interface Input {
    /** The tensor's values when they are in a heap array (read in place), else null. */
    float[] array(int tensor);

    /**
     * Copies elements [from, from + n) of the tensor into {@code dst[at, at + n)}; called only when
     * {@link #array} is null. May throw on a fault in mapped memory.
     */
    void read(int tensor, int from, float[] dst, int at, int n);

    /** One element, read again: names the replica whose value made a mean not finite. */
    float valueAt(int tensor, int element);
  }

  /** Arrays as an input ({@code arrays[tensor]}). */
  public static Input of(float[][] arrays) {
    return new Input() {
      @Override
      public float[] array(int tensor) {
        return arrays[tensor];
      }

      @Override
      public void read(int tensor, int from, float[] dst, int at, int n) {
        System.arraycopy(arrays[tensor], from, dst, at, n);
      }

      @Override
      public float valueAt(int tensor, int element) {
        return arrays[tensor][element];
      }
    };
  }

  /**
   * Writes the mean of {@code replicas} into {@code out}, chunk by chunk on the optimizer's kernel
   * threads. With {@code check} each block of the mean is checked while it is in cache: a caller
   * needs it unless every input is known {@link Finite#bounded} (then no sum can overflow).
   *
   * @param out {@code [tensor]} with the optimizer's sizes; may be replica 0's own arrays
   * @return {@link #FINITE}, or the lowest non-finite element of the mean as {@code tensor << 32 |
   *     element}
   */
  public static long into(
      ScheduleFreeOptimizer chunks, Input[] replicas, float[][] out, boolean check) {
    AtomicLong lowest = new AtomicLong(Long.MAX_VALUE);
    chunks.forEachChunk(
        (t, from, to) -> {
          int bad = chunk(replicas, t, from, to, out[t], check);
          if (bad >= 0) {
            lowest.accumulateAndGet(((long) t << 32) | bad, Math::min);
          }
        });
    return lowest.get() == Long.MAX_VALUE ? FINITE : lowest.get();
  }

  /**
   * The mean of caller arrays given as {@code grads[tensor][replica]} (the Map API's shape), into
   * new arrays; with one replica its own arrays. The caller has ruled out an overflow.
   */
  static float[][] ofReplicas(ScheduleFreeOptimizer chunks, float[][][] grads, int[] numel) {
    int replicas = grads[0].length;
    float[][] mean = new float[grads.length][];
    if (replicas == 1) {
      for (int t = 0; t < mean.length; t++) {
        mean[t] = grads[t][0];
      }
      return mean;
    }
    Input[] inputs = new Input[replicas];
    for (int r = 0; r < replicas; r++) {
      float[][] g = new float[grads.length][];
      for (int t = 0; t < g.length; t++) {
        g[t] = grads[t][r];
      }
      inputs[r] = of(g);
    }
    for (int t = 0; t < mean.length; t++) {
      mean[t] = new float[numel[t]];
    }
    into(chunks, inputs, mean, false);
    return mean;
  }

  /**
   * The mean of elements {@code [from, to)} of tensor {@code t} into {@code out[from, to)}, with
   * exactly the operations {@link #into} makes for them: the server's pipelined steps form the mean
   * range by range as the replicas' chunks arrive, bit for bit the whole-step mean.
   *
   * @return the first element of the range whose mean is not finite (when {@code check}), or -1
   */
  public static int range(Input[] replicas, int t, int from, int to, float[] out, boolean check) {
    return chunk(replicas, t, from, to, out, check);
  }

  /** Elements [from, to) of tensor {@code t}; returns the first non-finite one checked, or -1. */
  static int chunk(Input[] in, int t, int from, int to, float[] o, boolean check) {
    for (Input i : in) {
      if (i.array(t) == null) {
        return staged(in, t, from, to, o, check);
      }
    }
    return direct(in, t, from, to, o, check);
  }

  /**
   * Every input in arrays: whole-chunk loops over equal indexes, which C2 vectorizes (an offset
   * between two arrays that might be the same one would stop it).
   */
  private static int direct(Input[] in, int t, int from, int to, float[] o, boolean check) {
    float[] g0 = in[0].array(t);
    if (in.length == 1) {
      if (g0 != o) {
        System.arraycopy(g0, from, o, from, to - from);
      }
    } else {
      float[] g1 = in[1].array(t);
      for (int i = from; i < to; i++) {
        o[i] = g0[i] + g1[i];
      }
      for (int r = 2; r < in.length; r++) {
        float[] g = in[r].array(t);
        for (int i = from; i < to; i++) {
          o[i] += g[i];
        }
      }
      float count = in.length;
      for (int i = from; i < to; i++) {
        o[i] /= count;
      }
    }
    return check ? firstNonFinite(o, from, to) : -1;
  }

  /**
   * Some input must be read (a mapped segment): block by block, replica 0 read straight into the
   * output, each other replica into a small per-thread block and added at once; the last addition
   * divides by R and checks in the same pass, while the block is in cache.
   */
  private static int staged(Input[] in, int t, int from, int to, float[] o, boolean check) {
    float[] next = NEXT.get();
    float count = in.length;
    int last = in.length - 1;
    for (int at = from; at < to; at += BLOCK) {
      int n = Math.min(BLOCK, to - at);
      in[0].read(t, at, o, at, n);
      boolean finite;
      if (last == 0) {
        finite = !check || Finite.all(o, at, at + n);
      } else {
        for (int r = 1; r < last; r++) {
          in[r].read(t, at, next, 0, n);
          addInto(o, at, next, n);
        }
        in[last].read(t, at, next, 0, n);
        finite = addDivide(o, at, next, n, count) || !check;
      }
      if (!finite) {
        return firstNonFinite(o, at, at + n);
      }
    }
    return -1;
  }

  /** {@code o[at + j] += b[j]} for j in [0, n). */
  private static void addInto(float[] o, int at, float[] b, int n) {
    if (Finite.VECTOR) {
      VectorScan.addInto(o, at, b, n);
      return;
    }
    for (int j = 0; j < n; j++) {
      o[at + j] += b[j];
    }
  }

  /** {@code o[at + j] = (o[at + j] + b[j]) / count} for j in [0, n); whether all are finite. */
  private static boolean addDivide(float[] o, int at, float[] b, int n, float count) {
    if (Finite.VECTOR) {
      return VectorScan.addDivide(o, at, b, n, count);
    }
    for (int j = 0; j < n; j++) {
      o[at + j] = (o[at + j] + b[j]) / count;
    }
    return Finite.all(o, at, at + n);
  }

  private static int firstNonFinite(float[] v, int from, int to) {
    if (Finite.all(v, from, to)) {
      return -1;
    }
    int i = from;
    while (Float.isFinite(v[i])) {
      i++;
    }
    return i;
  }
}
