package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.Finite;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The SYNC replicas' mean gradient, formed by the run before the step so the core runs its
 * single-replica kernel. The core's own multi-replica path stages every block of state through
 * small L2 copies to keep its kernel vectorized; at 10M parameters and two replicas that cost about
 * three times the CPU of the single-replica kernel (profile: 43 ms against 13 ms per step), more
 * than this separate pass.
 *
 * <p>Bit-identical to the core's {@code ReplicaMean}: summed left to right in replica order in
 * float32, then divided by R in float32.
 */
final class ReplicaAverage {
  /** {@link #into}'s answer when every element of the mean is finite. */
  static final long FINITE = -1;

  private ReplicaAverage() {}

  /**
   * Writes the mean of at least two replicas' gradients into {@code out}, chunk by chunk on the
   * optimizer's kernel threads. Every replica's gradient was checked finite on arrival, but finite
   * values can still sum to an infinity; with {@code check} each chunk of the mean is checked while
   * it is in cache (needed only when some gradient is not {@link Finite#bounded}).
   *
   * @param gradients {@code [replica][tensor]}, every replica with the run's tensor sizes
   * @param out {@code [tensor]}, the run's sizes: {@code gradients[0]} itself, or arrays of its own
   * @return {@link #FINITE}, or the lowest non-finite element as {@code tensor << 32 | element}
   */
  static long into(
      ScheduleFreeOptimizer optimizer, float[][][] gradients, float[][] out, boolean check) {
    float count = gradients.length;
    AtomicLong lowest = new AtomicLong(Long.MAX_VALUE);
    optimizer.forEachChunk(
        (t, from, to) -> {
          float[] o = out[t];
          float[] g0 = gradients[0][t];
          float[] g1 = gradients[1][t];
          for (int i = from; i < to; i++) {
            o[i] = g0[i] + g1[i];
          }
          for (int r = 2; r < gradients.length; r++) {
            float[] g = gradients[r][t];
            for (int i = from; i < to; i++) {
              o[i] += g[i];
            }
          }
          for (int i = from; i < to; i++) {
            o[i] /= count;
          }
          if (check && !Finite.all(o, from, to)) {
            int i = from;
            while (Float.isFinite(o[i])) {
              i++;
            }
            long key = ((long) t << 32) | i;
            lowest.accumulateAndGet(key, Math::min);
          }
        });
    return lowest.get() == Long.MAX_VALUE ? FINITE : lowest.get();
  }
}
