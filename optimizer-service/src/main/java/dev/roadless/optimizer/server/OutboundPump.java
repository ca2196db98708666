package dev.roadless.optimizer.server;

import dev.roadless.optimizer.wire.FloatChunkOut;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.ArrayDeque;
import java.util.Iterator;

/**
 * Writes server-streamed messages only while the transport is ready, so an 80 MB answer never piles
 * up in memory. Sources are drained in order; each may have a completion action (for example
 * onCompleted, or nothing on a long-lived bidirectional stream).
 */
final class OutboundPump<T> {
  private final ServerCallStreamObserver<T> observer;
  private final ArrayDeque<Source<T>> queue = new ArrayDeque<>();
  private final dev.roadless.common.runtime.ServiceMetrics.Bytes bytesOut;
  private boolean cancelled;

  private record Source<T>(Iterator<T> messages, Runnable whenDone) {}

  /**
   * How many bytes may wait in the transport before the pump pauses. gRPC's default (32 KiB) is
   * less than one 1 MiB chunk, so every chunk would wait for the previous one to reach the socket;
   * a few chunks of slack keep the socket busy while the next chunk is encoded.
   */
  static final int ON_READY_BYTES = 4 << 20;

  OutboundPump(
      ServerCallStreamObserver<T> observer,
      dev.roadless.common.runtime.ServiceMetrics.Bytes bytesOut) {
    this.observer = observer;
    this.bytesOut = bytesOut;
    observer.setOnReadyThreshold(ON_READY_BYTES);
    observer.setOnReadyHandler(this::drain);
    observer.setOnCancelHandler(
        () -> {
          synchronized (this) {
            cancelled = true;
            // Sources that hold a snapshot let it go; the rest are just dropped.
            queue.forEach(source -> closeQuietly(source.messages()));
            queue.clear();
          }
        });
  }

  /** Queues messages; {@code whenDone} runs after the last one is written. */
  void send(Iterator<T> messages, Runnable whenDone) {
    synchronized (this) {
      if (cancelled) {
        closeQuietly(messages);
        return;
      }
      queue.add(new Source<>(messages, whenDone));
    }
    drain();
  }

  private static void closeQuietly(Object source) {
    if (source instanceof AutoCloseable c) {
      try {
        c.close();
      } catch (Exception ignored) {
        // Nothing to do: the call is gone.
      }
    }
  }

  private synchronized void drain() {
    while (!cancelled && !queue.isEmpty() && observer.isReady()) {
      Source<T> head = queue.peek();
      if (head.messages().hasNext()) {
        T message = head.messages().next();
        if (message instanceof com.google.protobuf.MessageLite lite) {
          bytesOut.add(lite.getSerializedSize());
        } else if (message instanceof FloatChunkOut chunk) {
          bytesOut.add(chunk.serializedSize());
        }
        observer.onNext(message);
      } else {
        queue.poll();
        if (head.whenDone() != null) {
          head.whenDone().run();
        }
      }
    }
  }
}
