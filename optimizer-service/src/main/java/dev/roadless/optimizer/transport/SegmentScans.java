package dev.roadless.optimizer.transport;

import dev.roadless.optimizer.core.Finite;
import dev.roadless.optimizer.shm.SharedSegment;

/** The check of a replica's gradient where it lies, without a copy ({@link Finite}'s scans). */
final class SegmentScans {
  private SegmentScans() {}

  /** True when elements [from, to) of tensor {@code t}'s gradient are all finite, in place. */
  static boolean allFinite(SharedSegment s, int t, int from, int to) {
    return s.gradientRegion()
        .scan(s.start(t) + from, to - from, 0, (b, byteAt, o, n) -> Finite.allIn(b, byteAt, n));
  }
}
