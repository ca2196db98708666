package dev.roadless.optimizer.wire;

import com.google.protobuf.ByteString;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import io.grpc.HasByteBuffer;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A received {@code TensorChunk} whose data has not been copied yet: on the Netty transport it
 * still lies in the receive buffers, and {@link #readFloat32} copies it once, straight into the
 * destination array. Protobuf would have copied it twice first (into a {@code byte[]} for the
 * parser, then into a {@code ByteString}).
 *
 * <p>Must be closed once read or dropped: that gives the transport its buffers back. A chunk that
 * is lost without being closed is closed when it is garbage collected.
 */
public final class InboundChunk implements AutoCloseable {
  private static final Cleaner CLEANER = Cleaner.create();
  private static final int SCRATCH_BYTES = 16 * 1024;
  private static final ThreadLocal<byte[]> SCRATCH =
      ThreadLocal.withInitial(() -> new byte[SCRATCH_BYTES]);

  private final String name;
  private final long elementOffset;
  private final DataType dtype;
  private final int byteLength;
  private final InputStream data;
  private final Cleaner.Cleanable cleanable;
  private boolean consumed;

  /**
   * @param data positioned at the first data byte, with exactly {@code byteLength} data bytes
   *     ahead; owned by this chunk from now on
   */
  InboundChunk(String name, long elementOffset, DataType dtype, int byteLength, InputStream data) {
    this.name = name;
    this.elementOffset = elementOffset;
    this.dtype = dtype;
    this.byteLength = byteLength;
    this.data = data;
    this.cleanable = CLEANER.register(this, () -> closeQuietly(data));
  }

  /** A chunk that was parsed by protobuf (small or unusual messages, the in-process transport). */
  public static InboundChunk of(TensorChunk chunk) {
    ByteString bytes = chunk.getData();
    return new InboundChunk(
        chunk.getName(),
        chunk.getElementOffset(),
        chunk.getDtype(),
        bytes.size(),
        bytes.newInput());
  }

  public String name() {
    return name;
  }

  public long elementOffset() {
    return elementOffset;
  }

  public DataType dtype() {
    return dtype;
  }

  /** Length of the raw data in bytes. */
  public int byteLength() {
    return byteLength;
  }

  /** Copies the little-endian float32 data into {@code dst[offset, offset + byteLength / 4)}. */
  public void readFloat32(float[] dst, int offset) {
    check(4);
    // Asked once: on gRPC's composite buffers every call walks all of them.
    boolean zeroCopy = data instanceof HasByteBuffer h && h.byteBufferSupported();
    try {
      int remaining = byteLength;
      int at = offset;
      while (remaining > 0) {
        ByteBuffer direct = zeroCopy ? ((HasByteBuffer) data).getByteBuffer() : null;
        if (direct != null && direct.remaining() >= 4) {
          // Zero-copy view of the transport's buffer: one bulk copy into the array.
          int n = Math.min(direct.remaining(), remaining) & ~3;
          direct.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(dst, at, n / 4);
          skipFully(n);
          at += n / 4;
          remaining -= n;
        } else {
          // A transport without buffer access: through the scratch array. A float split across
          // two of the transport's buffers: that one float only, then zero-copy again (frames and
          // socket reads end at any byte, so this happens at most buffer boundaries).
          byte[] scratch = SCRATCH.get();
          int n = Math.min(direct != null ? 4 : SCRATCH_BYTES, remaining);
          readFully(scratch, n);
          ByteBuffer.wrap(scratch, 0, n)
              .order(ByteOrder.LITTLE_ENDIAN)
              .asFloatBuffer()
              .get(dst, at, n / 4);
          at += n / 4;
          remaining -= n;
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Widens the little-endian bfloat16 data exactly into {@code dst[offset, ...)}. */
  public void readBfloat16(float[] dst, int offset) {
    check(2);
    try {
      byte[] scratch = SCRATCH.get();
      int at = offset;
      for (int remaining = byteLength; remaining > 0; ) {
        int n = Math.min(SCRATCH_BYTES, remaining);
        readFully(scratch, n);
        for (int i = 0; i < n; i += 2) {
          dst[at++] =
              Float.intBitsToFloat(((scratch[i] & 0xFF) | (scratch[i + 1] & 0xFF) << 8) << 16);
        }
        remaining -= n;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Whether this chunk reads (and will close) {@code stream}. */
  boolean owns(InputStream stream) {
    return data == stream;
  }

  /** Gives the transport's buffers back; safe to call more than once. */
  @Override
  public void close() {
    cleanable.clean();
  }

  private void check(int width) {
    if (consumed) {
      throw new IllegalStateException("chunk data was already read");
    }
    if (byteLength % width != 0) {
      throw new IllegalStateException(
          "data length " + byteLength + " is not a multiple of " + width);
    }
    consumed = true;
  }

  private void skipFully(int n) throws IOException {
    while (n > 0) {
      long skipped = data.skip(n);
      if (skipped <= 0) {
        throw new EOFException("chunk data ended early");
      }
      n -= (int) skipped;
    }
  }

  private void readFully(byte[] dst, int n) throws IOException {
    for (int done = 0; done < n; ) {
      int r = data.read(dst, done, n - done);
      if (r < 0) {
        throw new EOFException("chunk data ended early");
      }
      done += r;
    }
  }

  private static void closeQuietly(InputStream in) {
    try {
      in.close();
    } catch (IOException | RuntimeException ignored) {
      // Releasing buffers cannot usefully fail.
    }
  }
}
