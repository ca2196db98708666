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
 * If the message source fails (for example a file being streamed), the call is cancelled and that
 * failure is thrown.
 */
public final class ClientStreams {
  private ClientStreams() {}

  /**
   * @param start starts the call with the response observer (a stub method reference)
   * @param messages every request message, made as the transport asks for them
   */
  public static <Q, R> R send(
      Function<StreamObserver<R>, StreamObserver<Q>> start, Iterator<Q> messages) {
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
                    try {
                      while (!done && requests.isReady() && messages.hasNext()) {
                        requests.onNext(messages.next());
                      }
                      if (!done && !messages.hasNext()) {
                        done = true;
                        requests.onCompleted();
                      }
                    } catch (RuntimeException e) {
                      done = true;
                      requests.onError(e);
                      result.completeExceptionally(e);
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
