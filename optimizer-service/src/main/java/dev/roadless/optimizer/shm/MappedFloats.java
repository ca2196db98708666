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
    check(from, len);
    while (len > 0) {
      int w = (int) (from >>> WINDOW_SHIFT);
      int at = (int) (from & (WINDOW - 1));
      int n = Math.min(len, windows[w].capacity() - at);
      windows[w].get(at, dst, off, n);
      from += n;
      off += n;
      len -= n;
    }
  }

  /**
   * As {@link #get}, checking every value in the same pass; returns whether all are {@link
   * Finite#bounded} (finite and not large enough for a replica mean to overflow).
   */
  boolean getBounded(long from, float[] dst, int off, int len) {
    check(from, len);
    boolean bounded = true;
    while (len > 0) {
      int w = (int) (from >>> WINDOW_SHIFT);
      int at = (int) (from & (WINDOW - 1));
      int n = Math.min(len, windows[w].capacity() - at);
      bounded &= Finite.copyBounded(bytes[w], at * 4, dst, off, off + n);
      from += n;
      off += n;
      len -= n;
    }
    return bounded;
  }

  /**
   * Writes {@code out[off + j] = (element from + j + other[off + j]) / 2} for j in [0, len), in
   * float32; returns whether every mean is finite.
   */
  boolean meanOfTwo(long from, float[] other, float[] out, int off, int len) {
    check(from, len);
    boolean finite = true;
    while (len > 0) {
      int w = (int) (from >>> WINDOW_SHIFT);
      int at = (int) (from & (WINDOW - 1));
      int n = Math.min(len, windows[w].capacity() - at);
      finite &= Finite.meanOfTwo(bytes[w], at * 4, other, out, off, off + n);
      from += n;
      off += n;
      len -= n;
    }
    return finite;
  }

  /** True when elements [from, from + len) are all finite: a scan in place, without a copy. */
  boolean allFinite(long from, int len) {
    check(from, len);
    boolean finite = true;
    while (len > 0) {
      int w = (int) (from >>> WINDOW_SHIFT);
      int at = (int) (from & (WINDOW - 1));
      int n = Math.min(len, windows[w].capacity() - at);
      finite &= Finite.allIn(bytes[w], at * 4, n);
      from += n;
      len -= n;
    }
    return finite;
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
    a.check(from, len);
    boolean finite = true;
    while (len > 0) {
      int w = (int) (from >>> WINDOW_SHIFT);
      int at = (int) (from & (WINDOW - 1));
      int n = Math.min(len, a.windows[w].capacity() - at);
      finite &= Finite.meanOfTwoIn(a.bytes[w], at * 4, b.bytes[w], at * 4, out, off, off + n);
      from += n;
      off += n;
      len -= n;
    }
    return finite;
  }

  /** Copies {@code src[off..off+len)} to elements starting at {@code to}. */
  void put(long to, float[] src, int off, int len) {
    check(to, len);
    while (len > 0) {
      int w = (int) (to >>> WINDOW_SHIFT);
      int at = (int) (to & (WINDOW - 1));
      int n = Math.min(len, windows[w].capacity() - at);
      windows[w].put(at, src, off, n);
      to += n;
      off += n;
      len -= n;
    }
  }

  private void check(long at, int len) {
    if (at < 0 || len < 0 || at + len > length) {
      throw new IndexOutOfBoundsException(
          "elements [" + at + ", " + (at + len) + ") outside [0, " + length + ")");
    }
  }
}
