package dev.roadless.optimizer.shm;

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
public final class MappedFloats {
  private static final int WINDOW_SHIFT = 28; // 2^28 floats = 1 GiB
  private static final long WINDOW = 1L << WINDOW_SHIFT;

  private final FloatBuffer[] windows;
  private final ByteBuffer[] bytes; // the same windows, little-endian bytes
  private final long length;

  /**
   * @param byteOffset where the region starts in the file
   * @param length elements in the region
   */
  public MappedFloats(FileChannel channel, long byteOffset, long length) throws IOException {
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

  public long length() {
    return length;
  }

  /**
   * Unmaps every window now. The caller guarantees that nobody touches this region any more:
   * reading an unmapped window crashes the process.
   */
  void unmap() {
    for (int w = 0; w < bytes.length; w++) {
      ByteBuffer b = bytes[w];
      bytes[w] = null;
      windows[w] = null;
      if (b != null && b.isDirect()) {
        Unmapper.unmap(b);
      }
    }
  }

  /** Copies {@code len} elements starting at element {@code from} into {@code dst[off..]}. */
  public void get(long from, float[] dst, int off, int len) {
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
  public void put(long to, float[] src, int off, int len) {
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
   * Runs {@code piece} over elements [from, from + len) where they lie, split at the mapping
   * windows' edges (array indexes from {@code off}); returns whether every piece returned true. The
   * server checks a replica's gradient in place with this, without a copy.
   */
  public boolean scan(long from, int len, int off, BytePiece piece) {
    return pieces(from, len, off, (w, at, o, n) -> piece.run(bytes[w], at * 4, o, n));
  }

  /**
   * {@code n} elements at byte {@code byteAt} of {@code window} (little-endian float32), which
   * belong at array index {@code off}.
   */
  @FunctionalInterface
  public interface BytePiece {
    boolean run(ByteBuffer window, int byteAt, int off, int n);
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
