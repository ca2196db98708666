package dev.roadless.optimizer.core;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The data-parallel mean gradient {@code (g_0 + g_1 + ... + g_{R-1}) / R}: summed left to right in
 * replica order in float32, then divided by R in float32, so it never depends on arrival order and
 * R = 1 gives exactly g. This is the only implementation of that mean; where a replica's gradient
 * lies (the server's arrays, a shared-memory segment) is an {@link Input} to it.
 *
 * <p>Each chunk is formed block by block: replica 0's block is copied into the output, every other
 * replica's block is added (read in place from an array, or copied into a small per-thread block
 * first), the block is divided by R and, when asked, checked while it is still in L1. Main-memory
 * traffic stays one read per replica and one write of the mean.
 */
public final class ReplicaMean {
  /** {@link #into}'s answer when every element of the mean is finite. */
  public static final long FINITE = -1;

  /** Floats per block: the output's block and one input block stay inside L1. */
  private static final int BLOCK = 2048;

  private static final ThreadLocal<float[]> SCRATCH =
      ThreadLocal.withInitial(() -> new float[BLOCK]);

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

  /** Elements [from, to) of tensor {@code t}; returns the first non-finite one checked, or -1. */
  static int chunk(Input[] in, int t, int from, int to, float[] o, boolean check) {
    float count = in.length;
    float[] first = in[0].array(t);
    for (int at = from; at < to; at += BLOCK) {
      int n = Math.min(BLOCK, to - at);
      if (first == null) {
        in[0].read(t, at, o, at, n);
      } else if (first != o) {
        System.arraycopy(first, at, o, at, n);
      }
      for (int r = 1; r < in.length; r++) {
        float[] g = in[r].array(t);
        int off = at;
        if (g == null) {
          g = SCRATCH.get();
          in[r].read(t, at, g, 0, n);
          off = 0;
        }
        for (int j = 0; j < n; j++) {
          o[at + j] += g[off + j];
        }
      }
      if (in.length > 1) {
        for (int j = at; j < at + n; j++) {
          o[j] /= count;
        }
      }
      if (check && !Finite.all(o, at, at + n)) {
        int i = at;
        while (Float.isFinite(o[i])) {
          i++;
        }
        return i;
      }
    }
    return -1;
  }
}
