package dev.roadless.optimizer.wire;

import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import io.grpc.Detachable;
import io.grpc.HasByteBuffer;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.protobuf.ProtoUtils;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.SequenceInputStream;
import java.util.function.Function;

/**
 * Marshaller of a streaming message type {@code M} whose {@code oneof} holds a {@code TensorChunk}
 * as field 2. Outbound it writes {@code M} as protobuf does, or a {@link FloatChunkOut} straight
 * from its array. Inbound it parses a chunk message into an {@link InboundChunk} without copying
 * the data (on transports that expose their buffers), and anything else into {@code M}.
 *
 * <p>The fast path reads only the few bytes before the data. Any layout it does not expect (other
 * field order, repeated or unknown fields, data not last) falls back to protobuf on the same bytes,
 * so every valid encoding is accepted exactly as protobuf would accept it.
 */
final class ChunkMarshaller<M extends Message> implements MethodDescriptor.Marshaller<Object> {
  private final MethodDescriptor.Marshaller<M> proto;
  private final Parser<M> parser;
  private final Function<M, TensorChunk> chunkOf;

  /**
   * @param prototype the message type's default instance
   * @param chunkOf the message's chunk, or null when it holds something else
   */
  @SuppressWarnings("unchecked")
  ChunkMarshaller(M prototype, Function<M, TensorChunk> chunkOf) {
    this.proto = ProtoUtils.marshaller(prototype);
    this.parser = (Parser<M>) prototype.getParserForType();
    this.chunkOf = chunkOf;
  }

  @Override
  @SuppressWarnings("unchecked")
  public InputStream stream(Object value) {
    if (value instanceof FloatChunkOut chunk) {
      return chunk.stream();
    }
    return proto.stream((M) value);
  }

  /** Returns an {@link InboundChunk} (to be closed by the receiver) or an {@code M}. */
  @Override
  public Object parse(InputStream stream) {
    InputStream in;
    if (stream instanceof Detachable d
        && stream instanceof HasByteBuffer h
        && h.byteBufferSupported()) {
      // Take over the transport's buffers; the chunk releases them when it is closed.
      in = d.detach();
    } else {
      try {
        in = new ByteArrayInputStream(stream.readAllBytes());
      } catch (IOException e) {
        throw Status.INTERNAL
            .withDescription("cannot read message")
            .withCause(e)
            .asRuntimeException();
      }
    }
    boolean owned = false;
    try {
      Object parsed = parseFrom(in);
      owned = parsed instanceof InboundChunk c && c.owns(in);
      return parsed;
    } catch (IOException e) {
      throw Status.INTERNAL
          .withDescription("Invalid protobuf byte sequence")
          .withCause(e)
          .asRuntimeException();
    } finally {
      if (!owned) {
        closeQuietly(in);
      }
    }
  }

  private Object parseFrom(InputStream in) throws IOException {
    int total = in.available();
    WireFormat.Recorder r = new WireFormat.Recorder(in);
    if (total > 0 && r.readVarint() == WireFormat.TAG_CHUNK) {
      long inner = r.readVarint();
      if (inner >= 0 && r.count() + inner == total) {
        InboundChunk chunk = chunkBody(r, inner, in);
        if (chunk != null) {
          return chunk;
        }
      }
    }
    return fallback(r.seen(), in);
  }

  /** The chunk if its fields come in the usual order with data last, else null. */
  private InboundChunk chunkBody(WireFormat.Recorder r, long inner, InputStream in)
      throws IOException {
    int start = r.count();
    String name = "";
    long offset = 0;
    int dtype = 0;
    while (r.count() - start < inner) {
      long tag = r.readVarint();
      if (tag == WireFormat.TAG_NAME && name.isEmpty()) {
        long n = r.readVarint();
        if (n < 0 || n > 4096) {
          return null;
        }
        name = r.readUtf8((int) n);
      } else if (tag == WireFormat.TAG_OFFSET && offset == 0) {
        offset = r.readVarint();
      } else if (tag == WireFormat.TAG_DTYPE && dtype == 0) {
        dtype = (int) r.readVarint();
      } else if (tag == WireFormat.TAG_DATA) {
        long n = r.readVarint();
        boolean last = r.count() - start + n == inner;
        if (n <= 0 || !last || DataType.forNumber(dtype) == null) {
          return null;
        }
        return new InboundChunk(name, offset, DataType.forNumber(dtype), (int) n, in);
      } else {
        return null;
      }
    }
    return null;
  }

  /** Protobuf on the whole message: the bytes read so far, then the rest. */
  private Object fallback(byte[] seen, InputStream rest) throws IOException {
    M message = parser.parseFrom(new SequenceInputStream(new ByteArrayInputStream(seen), rest));
    TensorChunk chunk = chunkOf == null ? null : chunkOf.apply(message);
    return chunk != null ? InboundChunk.of(chunk) : message;
  }

  private static void closeQuietly(InputStream in) {
    try {
      in.close();
    } catch (IOException | RuntimeException ignored) {
      // Releasing buffers cannot usefully fail.
    }
  }
}
