package dev.roadless.optimizer.server;

import dev.roadless.optimizer.core.Finite;
import dev.roadless.optimizer.shm.MappedFloats;
import dev.roadless.optimizer.shm.SharedSegment;

/**
 * The server's reads of a replica's gradient where it lies in its shared-memory segment, each
 * checking every value in the same pass ({@link Finite}'s vector scans over the mapped bytes).
 */
final class SegmentScans {
  private SegmentScans() {}

  /**
   * Copies elements [from, to) of tensor {@code t}'s gradient into {@code dst[from, to)}; returns
   * whether every value is {@link Finite#bounded}.
   */
  static boolean getBounded(SharedSegment s, int t, float[] dst, int from, int to) {
    return getBounded(s.gradientRegion(), s.start(t) + from, dst, from, to - from);
  }

  /** As above on a bare region: elements [at, at + len) into {@code dst[off ..]}. */
  static boolean getBounded(MappedFloats region, long at, float[] dst, int off, int len) {
    return region.scan(
        at, len, off, (b, byteAt, o, n) -> Finite.copyBounded(b, byteAt, dst, o, o + n));
  }

  /**
   * Writes {@code out[i] = (gradient[i] + other[i]) / 2} in float32 for elements [from, to) of
   * tensor {@code t}; returns whether every mean is finite.
   */
  static boolean meanWith(SharedSegment s, int t, float[] other, float[] out, int from, int to) {
    return meanWith(s.gradientRegion(), s.start(t) + from, other, out, from, to - from);
  }

  /** As above on a bare region: elements [at, at + len) with {@code other[off ..]}. */
  static boolean meanWith(
      MappedFloats region, long at, float[] other, float[] out, int off, int len) {
    return region.scan(
        at, len, off, (b, byteAt, o, n) -> Finite.meanOfTwo(b, byteAt, other, out, o, o + n));
  }

  /** True when elements [from, to) of tensor {@code t}'s gradient are all finite, in place. */
  static boolean allFinite(SharedSegment s, int t, int from, int to) {
    return s.gradientRegion()
        .scan(s.start(t) + from, to - from, 0, (b, byteAt, o, n) -> Finite.allIn(b, byteAt, n));
  }

  /**
   * Writes {@code out[i] = (a's gradient[i] + b's gradient[i]) / 2} in float32 for elements [from,
   * to) of tensor {@code t}; returns whether every mean is finite. Both segments belong to one run.
   */
  static boolean meanOfTwo(SharedSegment a, SharedSegment b, int t, float[] out, int from, int to) {
    return MappedFloats.scanPair(
        a.gradientRegion(),
        b.gradientRegion(),
        a.start(t) + from,
        to - from,
        from,
        (x, y, byteAt, o, n) -> Finite.meanOfTwoIn(x, byteAt, y, byteAt, out, o, o + n));
  }
}
