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
  private boolean inPush;
  private boolean committedOnce;
  private boolean failed;

  InboundStream(
      StreamObserver<?> responses, dev.roadless.common.runtime.ServiceMetrics.Bytes bytesIn) {
    this.responses = responses;
    this.bytesIn = bytesIn;
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
    failed = true;
  }

  @Override
  public final synchronized void onCompleted() {
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
