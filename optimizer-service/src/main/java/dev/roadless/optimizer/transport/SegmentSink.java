package dev.roadless.optimizer.transport;

import dev.roadless.optimizer.run.ParameterSink;
import dev.roadless.optimizer.shm.SharedSegment;

/**
 * Puts y into a replica's shared-memory segment while the step's kernel writes it, chunk by chunk
 * from the kernel threads' caches, so the answer needs no 40 MB copy after the step. If any range
 * fails (a fault in the mapping), the sink says so and the answer falls back to copying y.
 */
final class SegmentSink implements ParameterSink {
  private final SharedSegment segment;
  private volatile boolean failed;
  private volatile long step = -1;

  SegmentSink(SharedSegment segment) {
    this.segment = segment;
  }

  @Override
  public void range(float[][] y, int tensor, int from, int to) {
    if (failed) {
      return;
    }
    try {
      segment.putParameters(tensor, y[tensor], from, to);
    } catch (RuntimeException | InternalError e) {
      failed = true;
    }
  }

  @Override
  public void written(long step) {
    if (!failed) {
      this.step = step;
    }
  }

  /** The step whose y the segment holds complete, or -1 when the sink was not (fully) used. */
  long step() {
    return step;
  }
}
