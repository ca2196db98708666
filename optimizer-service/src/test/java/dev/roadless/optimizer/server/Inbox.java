package dev.roadless.optimizer.server;

import io.grpc.stub.StreamObserver;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * A response observer that queues what a stream delivers: each message, then the error (a {@link
 * Throwable}) or the string "completed".
 */
final class Inbox<T> implements StreamObserver<T> {
  final BlockingQueue<Object> queue = new LinkedBlockingQueue<>();

  @Override
  public void onNext(T value) {
    queue.add(value);
  }

  @Override
  public void onError(Throwable t) {
    queue.add(t);
  }

  @Override
  public void onCompleted() {
    queue.add("completed");
  }
}
