package dev.roadless.optimizer.server;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.wire.InboundChunk;
import dev.roadless.optimizer.wire.WireMethods;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.stub.StreamObserver;

/**
 * The header, chunks, commit protocol shared by every upload-like stream. Subclasses say how to
 * read each message kind; this class enforces the order, turns a stream that ends early into
 * STREAM_TRUNCATED, and stops listening after the first error so a refused stream changes nothing.
 */
abstract class InboundStream<Q> implements StreamObserver<Q> {
  enum Kind {
    HEADER,
    CHUNK,
    COMMIT,
    OTHER
  }

  private final StreamObserver<?> responses;
  private final dev.roadless.common.runtime.ServiceMetrics.Bytes bytesIn;
  private final IdleStreams idle;
  private boolean inPush;
  private boolean committedOnce;
  private boolean failed;
  private volatile long lastHeard = System.nanoTime();
  private volatile boolean serverTurn;

  InboundStream(
      StreamObserver<?> responses,
      dev.roadless.common.runtime.ServiceMetrics.Bytes bytesIn,
      IdleStreams idle) {
    this.responses = responses;
    this.bytesIn = bytesIn;
    this.idle = idle;
    idle.add(this);
  }

  /** How long the client has been silent while it was its turn; 0 during the server's turn. */
  final long clientIdleNanos(long now) {
    return serverTurn ? 0 : now - lastHeard;
  }

  /**
   * The server answered a commit of a repeatable stream (Train) and waits for the client's next
   * push: the client's turn starts now.
   */
  final void clientTurn() {
    lastHeard = System.nanoTime();
    serverTurn = false;
  }

  /** Closes a stream whose client stayed silent past the limit; nothing it sent is applied. */
  final synchronized void expire(long limitMillis) {
    fail(
        RoadlessException.of(
                ErrorReason.ERROR_REASON_STREAM_IDLE,
                "the stream sent nothing for "
                    + limitMillis
                    + " ms while the server waited for it; nothing of it was applied")
            .with("limit", limitMillis)
            .build());
  }

  abstract Kind kind(Q message);

  abstract void onHeader(Q message);

  abstract void onChunk(Q message);

  abstract void onCommit(Q message);

  /** Whether a second header may follow a commit on the same stream (Train). */
  boolean repeatable() {
    return false;
  }

  /** Called when the client finished cleanly after at least one commit. */
  void onClientDone() {}

  @Override
  public final synchronized void onNext(Q message) {
    try {
      accept(message);
    } finally {
      // A chunk's receive buffers go back once it was read, or at once when it is refused.
      WireMethods.discard(message);
    }
  }

  private void accept(Q message) {
    if (failed) {
      return;
    }
    lastHeard = System.nanoTime();
    if (message instanceof com.google.protobuf.MessageLite lite) {
      bytesIn.add(lite.getSerializedSize());
    } else if (message instanceof InboundChunk chunk) {
      bytesIn.add(chunk.byteLength());
    }
    try {
      Kind kind = kind(message);
      switch (kind) {
        case HEADER -> {
          if (inPush || (committedOnce && !repeatable())) {
            throw outOfOrder("a second header");
          }
          inPush = true;
          onHeader(message);
        }
        case CHUNK -> {
          if (!inPush) {
            throw outOfOrder("a chunk outside header ... commit");
          }
          onChunk(message);
        }
        case COMMIT -> {
          if (!inPush) {
            throw outOfOrder("a commit without a header");
          }
          inPush = false;
          committedOnce = true;
          serverTurn = true;
          if (!repeatable()) {
            idle.remove(this); // the server answers the commit and the call is over
          }
          onCommit(message);
        }
        default -> throw outOfOrder("an empty message");
      }
    } catch (RuntimeException e) {
      fail(e);
    }
  }

  @Override
  public final synchronized void onError(Throwable t) {
    // The client went away; whatever it had sent is dropped.
    idle.remove(this);
    if (!failed) {
      failed = true;
      failed(t);
    }
  }

  @Override
  public final synchronized void onCompleted() {
    idle.remove(this);
    if (failed) {
      return;
    }
    if (inPush || !committedOnce) {
      fail(
          new RoadlessException(
              ErrorReason.ERROR_REASON_STREAM_TRUNCATED,
              "stream ended before its commit message; nothing was applied"));
      return;
    }
    try {
      onClientDone();
    } catch (RuntimeException e) {
      fail(e);
    }
  }

  /** True once the stream failed (it sends nothing more). */
  final synchronized boolean hasFailed() {
    return failed;
  }

  /** Sends the error once and ignores the rest of the stream. */
  final void fail(Throwable t) {
    if (failed) {
      return;
    }
    failed = true;
    idle.remove(this);
    failed(t);
    responses.onError(Errors.toStatus(t));
  }

  /** Hook for counting refusals. */
  void failed(Throwable t) {}

  private static RoadlessException outOfOrder(String what) {
    return new RoadlessException(
        ErrorReason.ERROR_REASON_STREAM_OUT_OF_ORDER, "protocol violation: " + what);
  }
}
