package dev.roadless.optimizer.transport;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.ParameterSink;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.proto.common.v1.ErrorReason;

/**
 * One push through a replica's shared-memory segment: its gradient goes to the run where it lies,
 * and y of its step comes back into the segment (written by the step kernel through a sink, or
 * copied when the push took part in no step of its own).
 */
public final class SegmentPush {
  private final SharedSegment segment;
  private final Run run;
  private final int replica;
  private final SegmentSink sink;
  private final java.util.concurrent.atomic.AtomicBoolean open =
      new java.util.concurrent.atomic.AtomicBoolean(true);

  /** Leases the segment: it stays mapped until {@link #close}, even if the run is deleted. */
  SegmentPush(SharedSegment segment, Run run, int replica) {
    if (!segment.lease()) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SHARED_MEMORY_UNKNOWN,
              "the shared-memory segment of run '" + run.id() + "' replica " + replica + " is gone")
          .with("run_id", run.id())
          .with("replica", replica)
          .build();
    }
    this.segment = segment;
    this.run = run;
    this.replica = replica;
    this.sink = new SegmentSink(segment);
  }

  /**
   * Ends this push's lease once it no longer reads the gradient or writes y (its answer is out, or
   * it failed). Reads under the run's lock (the mean of a held push) need none: a deleted run reads
   * nothing more.
   */
  public void close() {
    if (open.compareAndSet(true, false)) {
      segment.release();
    }
  }

  /** The segment's float32 elements (gradient region; the parameters region is as large). */
  public long totalElements() {
    return segment.totalElements();
  }

  /**
   * Hands the gradient to the run as replica {@code replica}'s push for {@code step}.
   *
   * @param totalElements what the commit says; must be the segment's size
   */
  public PushResult push(long step, long totalElements) {
    long total = totalElements();
    if (totalElements != total) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SIZE_MISMATCH,
              "commit says " + totalElements + " elements; the run has " + total)
          .with("field", "total_elements")
          .build();
    }
    return run.push(replica, step, new SegmentGradient(segment, run), sink);
  }

  /** The sink that puts y of this push's step into the segment. */
  ParameterSink sink() {
    return sink;
  }

  /**
   * Makes the segment hold the run's current y and returns its step: normally the step's kernel
   * already put it there; a push answered without a step of its own (a duplicate) copies it.
   *
   * @throws RoadlessException SHARED_MEMORY_UNKNOWN when the segment cannot be written
   */
  public long parametersStep() {
    long yStep = sink.step();
    if (yStep >= 0) {
      return yStep;
    }
    ParameterSnapshot y = run.acquireParameters(Sequence.TRAIN);
    try {
      // One writer at a time: a replica's old stream may still be answering while its new one
      // pushes again.
      synchronized (segment) {
        segment.writeParameters(y.values());
      }
      return y.step();
    } catch (RuntimeException | InternalError e) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SHARED_MEMORY_UNKNOWN,
              "cannot write y to the shared-memory segment: " + e)
          .build();
    } finally {
      y.release();
    }
  }
}
