package dev.roadless.optimizer.transport;

import dev.roadless.optimizer.core.ReplicaMean;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.SharedGradient;
import dev.roadless.optimizer.shm.SharedSegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One push's gradient in a replica's shared-memory segment, as an input of the run's replica mean.
 * The step never uses the segment in place: the replica could write the region again, so what the
 * step uses is read into the run's arrays (by the mean, or the mean of one: a copy) and checked in
 * the same pass, after the read. A pending push's check in place only refuses it early.
 */
final class SegmentGradient implements SharedGradient {
  private final SharedSegment segment;
  private final Run run;

  SegmentGradient(SharedSegment segment, Run run) {
    this.segment = segment;
    this.run = run;
  }

  @Override
  public float[] array(int tensor) {
    return null; // always read: the values are the replica's until the run copies them
  }

  @Override
  public void read(int tensor, int from, float[] dst, int at, int n) {
    segment.getGradient(tensor, from, from + n, dst, at);
  }

  @Override
  public float valueAt(int tensor, int element) {
    float[] one = new float[1];
    segment.getGradient(tensor, element, element + 1, one, 0);
    return one[0];
  }

  @Override
  public long checkInPlace() {
    AtomicLong lowest = new AtomicLong(Long.MAX_VALUE);
    run.optimizer()
        .forEachChunk(
            (t, from, to) -> {
              if (!SegmentScans.allFinite(segment, t, from, to)) {
                int i = from;
                while (i < to - 1 && Float.isFinite(valueAt(t, i))) {
                  i++;
                }
                lowest.accumulateAndGet(((long) t << 32) | i, Math::min);
              }
            });
    return lowest.get() == Long.MAX_VALUE ? ReplicaMean.FINITE : lowest.get();
  }
}
