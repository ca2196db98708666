package dev.roadless.optimizer.shm;

import java.io.IOException;
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
  private final long length;

  /**
   * @param byteOffset where the region starts in the file
   * @param length elements in the region
   */
  MappedFloats(FileChannel channel, long byteOffset, long length) throws IOException {
    this.length = length;
    int n = (int) ((length + WINDOW - 1) / WINDOW);
    windows = new FloatBuffer[n];
    for (int w = 0; w < n; w++) {
      long first = w * WINDOW;
      long count = Math.min(WINDOW, length - first);
      windows[w] =
          channel
              .map(FileChannel.MapMode.READ_WRITE, byteOffset + first * 4, count * 4)
              .order(ByteOrder.LITTLE_ENDIAN)
              .asFloatBuffer();
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
