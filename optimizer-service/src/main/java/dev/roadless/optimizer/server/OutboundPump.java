package dev.roadless.optimizer.server;

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
  private final Metrics.Bytes bytesOut;
  private boolean cancelled;

  private record Source<T>(Iterator<T> messages, Runnable whenDone) {}

  OutboundPump(ServerCallStreamObserver<T> observer, Metrics.Bytes bytesOut) {
    this.observer = observer;
    this.bytesOut = bytesOut;
    observer.setOnReadyHandler(this::drain);
    observer.setOnCancelHandler(
        () -> {
          synchronized (this) {
            cancelled = true;
            queue.clear();
          }
        });
  }

  /** Queues messages; {@code whenDone} runs after the last one is written. */
  void send(Iterator<T> messages, Runnable whenDone) {
    synchronized (this) {
      if (cancelled) {
        return;
      }
      queue.add(new Source<>(messages, whenDone));
    }
    drain();
  }

  private synchronized void drain() {
    while (!cancelled && !queue.isEmpty() && observer.isReady()) {
      Source<T> head = queue.peek();
      if (head.messages().hasNext()) {
        T message = head.messages().next();
        if (message instanceof com.google.protobuf.MessageLite lite) {
          bytesOut.add(lite.getSerializedSize());
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
