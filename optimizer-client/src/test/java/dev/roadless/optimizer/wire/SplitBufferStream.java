package dev.roadless.optimizer.wire;

import io.grpc.Detachable;
import io.grpc.HasByteBuffer;
import io.grpc.KnownLength;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * A stand-in for gRPC's Netty receive stream: the message lies in direct buffers of {@code piece}
 * bytes each (so floats straddle buffer boundaries), readable zero-copy and detachable.
 */
final class SplitBufferStream extends InputStream
    implements KnownLength, HasByteBuffer, Detachable {
  private final ArrayDeque<ByteBuffer> buffers;
  private boolean closed;
  private SplitBufferStream detached;
  private long copied;

  SplitBufferStream(byte[] message, int piece) {
    buffers = new ArrayDeque<>();
    for (int at = 0; at < message.length; at += piece) {
      int n = Math.min(piece, message.length - at);
      ByteBuffer b = ByteBuffer.allocateDirect(n);
      b.put(message, at, n).flip();
      buffers.add(b);
    }
  }

  private SplitBufferStream(ArrayDeque<ByteBuffer> buffers) {
    this.buffers = buffers;
  }

  boolean closed() {
    return closed;
  }

  SplitBufferStream detached() {
    return detached;
  }

  /** Bytes handed out through {@code read} (copies), not through {@code getByteBuffer}. */
  long copied() {
    return copied;
  }

  @Override
  public int available() {
    return buffers.stream().mapToInt(ByteBuffer::remaining).sum();
  }

  @Override
  public int read() {
    ByteBuffer b = current();
    if (b == null) {
      return -1;
    }
    copied++;
    return b.get() & 0xFF;
  }

  @Override
  public int read(byte[] dst, int off, int len) {
    ByteBuffer b = current();
    if (b == null) {
      return -1;
    }
    int n = Math.min(len, b.remaining());
    b.get(dst, off, n);
    copied += n;
    return n;
  }

  @Override
  public long skip(long n) {
    ByteBuffer b = current();
    if (b == null) {
      return 0;
    }
    int k = (int) Math.min(n, b.remaining());
    b.position(b.position() + k);
    return k;
  }

  @Override
  public boolean byteBufferSupported() {
    return true;
  }

  @Override
  public ByteBuffer getByteBuffer() {
    ByteBuffer b = current();
    return b == null ? null : b.slice();
  }

  @Override
  public InputStream detach() {
    detached = new SplitBufferStream(new ArrayDeque<>(buffers));
    buffers.clear();
    return detached;
  }

  @Override
  public void close() {
    closed = true;
  }

  private ByteBuffer current() {
    while (!buffers.isEmpty() && !buffers.peek().hasRemaining()) {
      buffers.poll();
    }
    return buffers.peek();
  }
}
