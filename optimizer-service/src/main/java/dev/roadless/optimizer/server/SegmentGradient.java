package dev.roadless.optimizer.server;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Finite;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.List;

/**
 * One push's gradient in a replica's shared-memory segment, read by the run chunk by chunk on its
 * kernel threads. The step never uses the segment in place: the replica could write the region
 * again, so what the step uses is read into the run's arrays (a copy, or the mean) and checked in
 * the same pass, after the read. A pending push's check in place only refuses it early; its values
 * are checked again, as part of the mean, when the step completes.
 */
final class SegmentGradient implements Run.SharedGradient {
  private final SharedSegment segment;
  private final Run run;
  private final List<String> names;
  private RoadlessException first;
  private volatile boolean unbounded;
  private long firstAt = Long.MAX_VALUE;

  SegmentGradient(SharedSegment segment, Run run) {
    this.segment = segment;
    this.run = run;
    this.names = run.tensorNames();
  }

  @Override
  public boolean copyInto(float[][] into) {
    run.optimizer()
        .forEachChunk(
            (t, from, to) -> {
              if (!SegmentScans.getBounded(segment, t, into[t], from, to)) {
                unbounded = true;
                check(t, into[t], from, to);
              }
            });
    throwFirst();
    return !unbounded;
  }

  /**
   * R = 1: the copy. R = 2: {@code (mine + other) / 2}, equal to ReplicaAverage's {@code (g0 + g1)
   * / 2} bit for bit because adding two floats commutes. Both read the segment once and check in
   * the same pass. The run asks for no more than two replicas. For two, the mean is what is
   * checked: the other gradient was checked when it arrived, so a non-finite mean is a non-finite
   * value of this one or two finite values whose sum overflows.
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
              if (others.length == 1) {
                if (!SegmentScans.getBounded(segment, t, o, from, to)) {
                  check(t, o, from, to);
                }
              } else if (!SegmentScans.meanWith(segment, t, others[1 - self][t], o, from, to)) {
                meanNotFinite(t, o, from, null);
              }
            });
    throwFirst();
  }

  /** Checks every element in place, without a copy. */
  @Override
  public void checkInPlace() {
    run.optimizer()
        .forEachChunk(
            (t, from, to) -> {
              if (!SegmentScans.allFinite(segment, t, from, to)) {
                float[] copy = new float[to - from];
                segment.getGradient(t, from, to, copy, 0);
                int i = 0;
                while (i < copy.length - 1 && Float.isFinite(copy[i])) {
                  i++;
                }
                remember(t, from + i, nonFinite(t, from + i, copy[i]));
              }
            });
    throwFirst();
  }

  /**
   * {@code (mine + other's) / 2} straight from both segments, which is ReplicaAverage's {@code (g0
   * + g1) / 2} bit for bit because adding two floats commutes; the mean is what is checked.
   */
  @Override
  public void meanWith(Run.SharedGradient other, float[][] out) {
    SharedSegment theirs = ((SegmentGradient) other).segment;
    run.optimizer()
        .forEachChunk(
            (t, from, to) -> {
              float[] o = out[t];
              if (!SegmentScans.meanOfTwo(segment, theirs, t, o, from, to)) {
                meanNotFinite(t, o, from, theirs);
              }
            });
    throwFirst();
  }

  /**
   * The mean in {@code o[from, ..)} of tensor {@code t} holds a value that is not finite: remembers
   * why, at its lowest element. This replica's value is not finite; or the other's, which was
   * checked when it arrived and so was written again since ({@code theirs}, the other segment, or
   * null when the other gradient is in the run's arrays); or both are finite and their sum
   * overflows.
   */
  private void meanNotFinite(int t, float[] o, int from, SharedSegment theirs) {
    int i = from;
    while (Float.isFinite(o[i])) {
      i++;
    }
    float mine = valueAt(segment, t, i);
    float their = theirs == null ? 0 : valueAt(theirs, t, i);
    remember(
        t,
        i,
        !Float.isFinite(mine)
            ? nonFinite(t, i, mine)
            : !Float.isFinite(their)
                ? otherChanged(t, i, their)
                : run.meanOverflows(((long) t << 32) | i));
  }

  private static float valueAt(SharedSegment s, int t, int element) {
    float[] one = new float[1];
    s.getGradient(t, element, element + 1, one, 0);
    return one[0];
  }

  /**
   * The pending replica's value was finite when it was checked and is not now: it wrote its segment
   * again while its push was pending, which the protocol forbids. This push is refused; the run is
   * unchanged.
   */
  private RoadlessException otherChanged(int t, int element, float value) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_SHARED_MEMORY_MISUSE,
            "tensor '"
                + names.get(t)
                + "' element "
                + element
                + " of the other replica's pending gradient changed to "
                + value
                + " after its push")
        .with("tensor", names.get(t))
        .with("element", element)
        .build();
  }

  private synchronized void throwFirst() {
    if (first != null) {
      throw first; // the lowest (tensor, element) that is not finite
    }
  }

  /** Checks elements [from, to) of tensor {@code t}; remembers the lowest non-finite one. */
  private void check(int t, float[] v, int from, int to) {
    if (!Finite.all(v, from, to)) {
      int i = from;
      while (Float.isFinite(v[i])) {
        i++;
      }
      remember(t, i, nonFinite(t, i, v[i]));
    }
  }

  private RoadlessException nonFinite(int t, int element, float value) {
    return ChunkAssembler.nonFinite(
        ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT, names.get(t), element, value);
  }

  private synchronized void remember(int t, int element, RoadlessException refusal) {
    long key = ((long) t << 32) | element;
    if (key < firstAt) {
      firstAt = key;
      first = refusal;
    }
  }
}
