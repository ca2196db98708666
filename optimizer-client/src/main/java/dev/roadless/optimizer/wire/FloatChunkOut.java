package dev.roadless.optimizer.wire;

import dev.roadless.proto.common.v1.DataType;
import io.grpc.Drainable;
import io.grpc.KnownLength;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * An outbound streaming message that carries one float32 {@code TensorChunk} (field 2 of
 * GetParametersResponse, TrainResponse, PushGradientsRequest and TrainRequest), serialized straight
 * from a slice of a {@code float[]} at the moment gRPC frames it. The bytes are exactly those
 * protobuf would write for the equivalent message, so any client reads them; what is saved is the
 * per-chunk {@code byte[]} and the protobuf copy of it (two 40 MB passes and 40 MB of garbage per
 * 10M-parameter stream).
 *
 * <p>The values must not change until the message has been written; {@code release} runs once when
 * gRPC is done with the message (written or dropped), which is when the owner may reuse the array.
 * A chunk may instead draw its values from a {@link FloatSource}, 4096 at a time into a per-thread
 * block, as it is serialized (the server's y, derived from its state and never stored).
 */
public final class FloatChunkOut {
  /** Floats encoded per step through a small scratch buffer that stays in the L1 cache. */
  private static final int SCRATCH_FLOATS = 4096;

  private static final ThreadLocal<byte[]> SCRATCH =
      ThreadLocal.withInitial(() -> new byte[SCRATCH_FLOATS * 4]);

  private static final ThreadLocal<float[]> FLOATS =
      ThreadLocal.withInitial(() -> new float[SCRATCH_FLOATS]);

  private final String name;
  private final long elementOffset;
  private final float[] values;
  private final FloatSource source;
  private final int from;
  private final int count;
  private final Runnable release;
  private final byte[] head;

  /**
   * @param name the tensor
   * @param values the tensor's array; elements {@code [from, from + count)} are sent
   * @param from first element, also the chunk's element_offset
   * @param count elements in this chunk, at least 1
   * @param release run once when gRPC no longer needs the values, or null
   */
  public FloatChunkOut(String name, float[] values, int from, int count, Runnable release) {
    this(name, from, values, from, count, release);
  }

  /**
   * As above for values that do not sit at their tensor's index: elements {@code [from, from +
   * count)} of {@code values} are the tensor's elements from {@code elementOffset} on (a block of y
   * that several streams send from one array).
   */
  public FloatChunkOut(
      String name, long elementOffset, float[] values, int from, int count, Runnable release) {
    this(name, elementOffset, values, null, from, count, release);
    if (from + count > values.length) {
      throw new IllegalArgumentException(
          "slice [" + from + ", +" + count + ") of " + values.length);
    }
  }

  /**
   * Elements {@code [from, from + count)} of a tensor produced by {@code source} (4096 at a time,
   * on the thread that serializes the message), sent with element_offset {@code from}.
   */
  public FloatChunkOut(String name, FloatSource source, int from, int count, Runnable release) {
    this(name, from, null, source, from, count, release);
  }

  private FloatChunkOut(
      String name,
      long elementOffset,
      float[] values,
      FloatSource source,
      int from,
      int count,
      Runnable release) {
    if (count < 1 || from < 0 || elementOffset < 0) {
      throw new IllegalArgumentException("slice [" + from + ", +" + count + ")");
    }
    this.name = name;
    this.elementOffset = elementOffset;
    this.values = values;
    this.source = source;
    this.from = from;
    this.count = count;
    this.release = release;
    this.head =
        WireFormat.chunkHead(
            name, elementOffset, DataType.DATA_TYPE_FLOAT32.getNumber(), count * 4);
  }

  public String name() {
    return name;
  }

  public long elementOffset() {
    return elementOffset;
  }

  public int count() {
    return count;
  }

  /** Bytes of the outer message on the wire (without gRPC's 5-byte frame header). */
  public int serializedSize() {
    return head.length + count * 4;
  }

  /** The serialized message, for the marshaller. */
  InputStream stream() {
    return new Stream();
  }

  /** Encodes {@code n} floats from {@code values[start..]} little-endian into {@code dst}. */
  private void encode(byte[] dst, int start, int n) {
    float[] src = values;
    int at = start;
    if (src == null) {
      src = FLOATS.get();
      source.get(start, src, n);
      at = 0;
    }
    ByteBuffer.wrap(dst, 0, n * 4).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(src, at, n);
  }

  private final class Stream extends InputStream implements Drainable, KnownLength {
    private final int total = serializedSize();
    private int pos;
    private boolean closed;

    @Override
    public int drainTo(OutputStream out) throws IOException {
      int start = pos;
      if (pos < head.length) {
        out.write(head, pos, head.length - pos);
        pos = head.length;
      }
      if ((pos - head.length) % 4 != 0) {
        // Someone read part of a float through read(); finish the slow way.
        byte[] rest = new byte[total - pos];
        readFully(rest);
        out.write(rest);
        return total - start;
      }
      byte[] scratch = SCRATCH.get();
      for (int e = (pos - head.length) / 4; e < count; ) {
        int n = Math.min(SCRATCH_FLOATS, count - e);
        encode(scratch, from + e, n);
        out.write(scratch, 0, n * 4);
        e += n;
      }
      pos = total;
      return total - start;
    }

    @Override
    public int available() {
      return total - pos;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
    }

    /** The generic path (in-process transport, tests): encodes a few floats at a time. */
    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (pos >= total) {
        return -1;
      }
      int done = 0;
      while (done < len && pos < total) {
        if (pos < head.length) {
          int n = Math.min(len - done, head.length - pos);
          System.arraycopy(head, pos, b, off + done, n);
          pos += n;
          done += n;
          continue;
        }
        int dataPos = pos - head.length;
        int element = dataPos / 4;
        int skip = dataPos % 4;
        int floats =
            Math.min(Math.min(SCRATCH_FLOATS, count - element), (skip + len - done + 3) / 4);
        byte[] scratch = SCRATCH.get();
        encode(scratch, from + element, floats);
        int n = Math.min(len - done, floats * 4 - skip);
        System.arraycopy(scratch, skip, b, off + done, n);
        pos += n;
        done += n;
      }
      return done;
    }

    private void readFully(byte[] dst) throws IOException {
      int n = 0;
      while (n < dst.length) {
        n += read(dst, n, dst.length - n);
      }
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        if (release != null) {
          release.run();
        }
      }
    }
  }
}
