package dev.roadless.optimizer.state;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.StateChunk;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.zip.CRC32C;

/**
 * Reads one state stream in {@link StateCodec}'s form, message by message, verifying it as it goes
 * (see there for the checks). {@link #next} returns the end message only once the checksum and the
 * element count matched, and {@code null} after it; every failure is an {@link IOException}.
 */
public final class StateReader {
  private final InputStream in;
  private final CRC32C crc = new CRC32C();
  private long remaining;
  private StateHeader header;
  private ExportStateResponse pendingHeader;
  private long declaredElements;
  private long elements;
  private boolean ended;

  StateReader(InputStream in, long availableBytes) {
    this.in = in;
    this.remaining = availableBytes;
  }

  /** The header, reading it if {@link #next} has not yet. */
  public StateHeader header() throws IOException {
    if (header == null) {
      pendingHeader = readHeader();
    }
    return header;
  }

  /** The next message (header, chunks, end), or {@code null} once the end message was returned. */
  public ExportStateResponse next() throws IOException {
    if (ended) {
      return null;
    }
    if (header == null) {
      return readHeader();
    }
    if (pendingHeader != null) {
      ExportStateResponse h = pendingHeader;
      pendingHeader = null;
      return h;
    }
    long before = crc.getValue();
    ExportStateResponse m = readMessage();
    switch (m.getItemCase()) {
      case CHUNK -> countChunk(m.getChunk());
      case END -> finish(m.getEnd(), (int) before);
      case HEADER -> throw corrupt("a second header");
      default -> throw corrupt("an empty message");
    }
    return m;
  }

  private ExportStateResponse readHeader() throws IOException {
    ExportStateResponse m = readMessage();
    if (!m.hasHeader()) {
      throw corrupt("the stream does not start with a header");
    }
    StateHeader h = m.getHeader();
    if (h.getFormatVersion() != StateCodec.FORMAT_VERSION) {
      throw new IOException(
          "unsupported state format_version "
              + h.getFormatVersion()
              + ", expected "
              + StateCodec.FORMAT_VERSION);
    }
    long perSlot = 0;
    for (TensorDescriptor t : h.getSpec().getTensorsList()) {
      long n = 1;
      for (long d : t.getShapeList()) {
        if (d < 0 || (d > 0 && n > Long.MAX_VALUE / 4 / d)) {
          throw corrupt("tensor '" + t.getName() + "' has an impossible shape");
        }
        n *= d;
      }
      perSlot += n;
      if (perSlot > Long.MAX_VALUE / 4 / 8) {
        throw corrupt("the header declares an impossible state size");
      }
    }
    declaredElements = perSlot * h.getSlotsCount();
    if (declaredElements * 4 > remaining) {
      throw shorter("a header declaring " + declaredElements * 4 + " bytes of arrays", remaining);
    }
    header = h;
    return m;
  }

  private void countChunk(StateChunk chunk) throws IOException {
    if (chunk.getChunk().getDtype() != DataType.DATA_TYPE_FLOAT32
        || chunk.getChunk().getData().size() % 4 != 0) {
      throw corrupt("a chunk that is not float32");
    }
    elements += chunk.getChunk().getData().size() / 4;
    if (elements > declaredElements) {
      throw corrupt("more elements than the header declares");
    }
  }

  private void finish(StreamCommit end, int expectedCrc) throws IOException {
    if (end.getCrc32C() != expectedCrc) {
      throw corrupt("checksum mismatch");
    }
    if (end.getTotalElements() != elements || elements != declaredElements) {
      throw corrupt(
          "the end declares "
              + end.getTotalElements()
              + " elements, the header "
              + declaredElements
              + ", the chunks hold "
              + elements);
    }
    ended = true;
  }

  private ExportStateResponse readMessage() throws IOException {
    int length = readLength();
    if (length > StateCodec.MAX_MESSAGE_BYTES) {
      throw corrupt("a message of " + length + " bytes");
    }
    if (length > remaining) {
      throw shorter("a message of " + length + " bytes", remaining);
    }
    byte[] bytes = in.readNBytes(length);
    if (bytes.length < length) {
      throw truncated();
    }
    remaining -= length;
    crc.update(bytes, 0, length);
    try {
      ExportStateResponse m = ExportStateResponse.parseFrom(bytes);
      if (!m.getUnknownFields().asMap().isEmpty()) {
        throw corrupt("unknown fields in a message");
      }
      return m;
    } catch (InvalidProtocolBufferException e) {
      throw new IOException("corrupt state stream: " + e.getMessage(), e);
    }
  }

  /** A varint of at most 5 bytes (protobuf's delimited framing), counted into the checksum. */
  private int readLength() throws IOException {
    long value = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      int b = in.read();
      if (b < 0) {
        throw truncated();
      }
      remaining--;
      crc.update(b);
      value |= (long) (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        if (value > Integer.MAX_VALUE) {
          break;
        }
        return (int) value;
      }
    }
    throw corrupt("a malformed message length");
  }

  private static IOException truncated() {
    return new EOFException("truncated state stream: it ends before its end message");
  }

  private static IOException shorter(String what, long left) {
    return new IOException(
        "truncated or corrupt state stream: " + what + ", more than the " + left + " bytes left");
  }

  private static IOException corrupt(String what) {
    return new IOException("corrupt state stream: " + what);
  }
}
