package dev.roadless.optimizer.server;

import dev.roadless.optimizer.core.Finite;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunException;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.List;

/**
 * One push's gradient in a replica's shared-memory segment, read by the run chunk by chunk on its
 * kernel threads and checked while each chunk is in that core's cache. Never used in place: the
 * replica could write the region again, so every value is copied before it is checked and used.
 */
final class SegmentGradient implements Run.SharedGradient {
  private final SharedSegment segment;
  private final Run run;
  private final List<String> names;
  private RunException first;
  private long firstAt = Long.MAX_VALUE;

  SegmentGradient(SharedSegment segment, Run run) {
    this.segment = segment;
    this.run = run;
    this.names = run.tensorNames();
  }

  @Override
  public void copyInto(float[][] into) {
    run.optimizer()
        .forEachChunk(
            (t, from, to) -> {
              segment.getGradient(t, into[t], from, to);
              check(t, into[t], from, to, from);
            });
    throwFirst();
  }

  /**
   * R = 1: the copy. R = 2: {@code (mine + other) / 2}, equal to ReplicaAverage's {@code (g0 + g1)
   * / 2} bit for bit because adding two floats commutes; every array is indexed alike, so C2
   * vectorizes the loop (through a staging buffer at another offset it does not, and runs 3x
   * slower). The run asks for no more than two replicas.
   */
  @Override
  public void meanInto(float[][][] others, int self, float[][] out) {
    if (others.length > 2) {
      throw new IllegalArgumentException("meanInto takes at most 2 replicas");
    }
    run.optimizer()
        .forEachChunk(
            (t, from, to) -> {
              float[] o = out[t];
              segment.getGradient(t, o, from, to);
              if (!check(t, o, from, to, from) || others.length == 1) {
                return;
              }
              float[] g = others[1 - self][t];
              for (int i = from; i < to; i++) {
                o[i] = (o[i] + g[i]) / 2f;
              }
            });
    throwFirst();
  }

  private synchronized void throwFirst() {
    if (first != null) {
      throw first; // the lowest (tensor, element) that is not finite
    }
  }

  /**
   * Checks {@code v[at, to)}, which holds elements [from, from + to - at) of tensor {@code t};
   * remembers the lowest non-finite element of the whole gradient.
   */
  private boolean check(int t, float[] v, int at, int to, int from) {
    if (Finite.all(v, at, to)) {
      return true;
    }
    int i = at;
    while (Float.isFinite(v[i])) {
      i++;
    }
    int element = from + (i - at);
    long key = ((long) t << 32) | element;
    synchronized (this) {
      if (key < firstAt) {
        firstAt = key;
        first =
            RunException.of(
                    ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT,
                    "tensor '" + names.get(t) + "' element " + element + " is " + v[i])
                .with("tensor", names.get(t))
                .with("element", element)
                .build();
      }
    }
    return false;
  }
}
