package dev.roadless.optimizer.shm;

import dev.roadless.optimizer.core.Finite;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;

/**
 * A region of float32 values in a mapped file, addressed by a long element index. Java maps at most
 * 2 GiB per buffer, so the region is mapped as 1 GiB windows and copies that cross a window edge
 * are split.
 */
final class MappedFloats {
  private static final int WINDOW_SHIFT = 28; // 2^28 floats = 1 GiB
  private static final long WINDOW = 1L << WINDOW_SHIFT;

  private final FloatBuffer[] windows;
  private final ByteBuffer[] bytes; // the same windows, little-endian bytes
  private final long length;

  /**
   * @param byteOffset where the region starts in the file
   * @param length elements in the region
   */
  MappedFloats(FileChannel channel, long byteOffset, long length) throws IOException {
    this.length = length;
    int n = (int) ((length + WINDOW - 1) / WINDOW);
    windows = new FloatBuffer[n];
    bytes = new ByteBuffer[n];
    for (int w = 0; w < n; w++) {
      long first = w * WINDOW;
      long count = Math.min(WINDOW, length - first);
      bytes[w] =
          channel
              .map(FileChannel.MapMode.READ_WRITE, byteOffset + first * 4, count * 4)
              .order(ByteOrder.LITTLE_ENDIAN);
      windows[w] = bytes[w].asFloatBuffer();
    }
  }

  long length() {
    return length;
  }

  /** Copies {@code len} elements starting at element {@code from} into {@code dst[off..]}. */
  void get(long from, float[] dst, int off, int len) {
    pieces(
        from,
        len,
        off,
        (w, at, o, n) -> {
          windows[w].get(at, dst, o, n);
          return true;
        });
  }

  /** Copies {@code src[off..off+len)} to elements starting at {@code to}. */
  void put(long to, float[] src, int off, int len) {
    pieces(
        to,
        len,
        off,
        (w, at, o, n) -> {
          windows[w].put(at, src, o, n);
          return true;
        });
  }

  /**
   * As {@link #get}, checking every value in the same pass; returns whether all are {@link
   * Finite#bounded} (finite and not large enough for a replica mean to overflow).
   */
  boolean getBounded(long from, float[] dst, int off, int len) {
    return pieces(
        from, len, off, (w, at, o, n) -> Finite.copyBounded(bytes[w], at * 4, dst, o, o + n));
  }

  /**
   * Writes {@code out[off + j] = (element from + j + other[off + j]) / 2} for j in [0, len), in
   * float32; returns whether every mean is finite.
   */
  boolean meanOfTwo(long from, float[] other, float[] out, int off, int len) {
    return pieces(
        from, len, off, (w, at, o, n) -> Finite.meanOfTwo(bytes[w], at * 4, other, out, o, o + n));
  }

  /** True when elements [from, from + len) are all finite: a scan in place, without a copy. */
  boolean allFinite(long from, int len) {
    return pieces(from, len, 0, (w, at, o, n) -> Finite.allIn(bytes[w], at * 4, n));
  }

  /**
   * Writes {@code out[off + j] = (a's element from + j + b's element from + j) / 2} for j in [0,
   * len), in float32; returns whether every mean is finite. The regions must have the same length
   * (so the same windows).
   */
  static boolean meanOfTwo(
      MappedFloats a, MappedFloats b, long from, float[] out, int off, int len) {
    if (a.length != b.length) {
      throw new IllegalArgumentException("regions of " + a.length + " and " + b.length);
    }
    return a.pieces(
        from,
        len,
        off,
        (w, at, o, n) -> Finite.meanOfTwoIn(a.bytes[w], at * 4, b.bytes[w], at * 4, out, o, o + n));
  }

  /**
   * Work on {@code n} elements from index {@code at} of window {@code w}, array index {@code off}.
   */
  private interface Piece {
    boolean run(int w, int at, int off, int n);
  }

  /**
   * Runs {@code piece} on elements [from, from + len) split at the window edges (array indexes from
   * {@code off}); returns whether every piece returned true.
   */
  private boolean pieces(long from, int len, int off, Piece piece) {
    check(from, len);
    boolean all = true;
    while (len > 0) {
      int w = (int) (from >>> WINDOW_SHIFT);
      int at = (int) (from & (WINDOW - 1));
      int n = Math.min(len, windows[w].capacity() - at);
      all &= piece.run(w, at, off, n);
      from += n;
      off += n;
      len -= n;
    }
    return all;
  }

  private void check(long at, int len) {
    if (at < 0 || len < 0 || at + len > length) {
      throw new IndexOutOfBoundsException(
          "elements [" + at + ", " + (at + len) + ") outside [0, " + length + ")");
    }
  }
}
