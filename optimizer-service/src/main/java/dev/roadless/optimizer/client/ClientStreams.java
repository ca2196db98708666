package dev.roadless.optimizer.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Function;

/**
 * A client-streaming call that sends only while the transport is ready, and waits for the answer.
 */
final class ClientStreams {
  private ClientStreams() {}

  static <Q, R> R send(Function<StreamObserver<R>, StreamObserver<Q>> start, Iterator<Q> messages) {
    CompletableFuture<R> result = new CompletableFuture<>();
    start.apply(
        new ClientResponseObserver<Q, R>() {
          private R response;

          @Override
          public void beforeStart(ClientCallStreamObserver<Q> requests) {
            requests.setOnReadyHandler(
                new Runnable() {
                  private boolean done;

                  @Override
                  public synchronized void run() {
                    while (!done && requests.isReady() && messages.hasNext()) {
                      requests.onNext(messages.next());
                    }
                    if (!done && !messages.hasNext()) {
                      done = true;
                      requests.onCompleted();
                    }
                  }
                });
          }

          @Override
          public void onNext(R value) {
            response = value;
          }

          @Override
          public void onError(Throwable t) {
            result.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            result.complete(response);
          }
        });
    try {
      return result.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw io.grpc.Status.CANCELLED.withCause(e).asRuntimeException();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException re) {
        throw re;
      }
      throw io.grpc.Status.UNKNOWN.withCause(e.getCause()).asRuntimeException();
    }
  }
}
