package dev.roadless.optimizer.wire;

/**
 * A float32 tensor whose elements are produced on demand, a block at a time, as a {@link
 * FloatChunkOut} encodes them (the server derives y from its state this way instead of storing it).
 */
@FunctionalInterface
public interface FloatSource {
  /** Writes elements {@code [from, from + n)} to {@code dst[0, n)}. */
  void get(int from, float[] dst, int n);
}
