package dev.roadless.optimizer.client;

import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.optimizer.wire.InboundChunk;
import dev.roadless.optimizer.wire.WireMethods;
import dev.roadless.proto.optimizer.v1.PushOutcome;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One replica's open Train stream: each {@link #step} sends a push and returns the answer, y of the
 * next step. One RPC for the whole training loop instead of a push and a GetParameters per step;
 * the answer's chunks are copied into place on gRPC's thread as they arrive. Not thread-safe: one
 * step at a time. Once it has failed, the stream is dead and a new one must be opened.
 */
final class TrainStream {
  private ClientCallStreamObserver<Object> requests;
  private Iterator<Object> outgoing;
  private ParametersDecoder decoder;
  private CompletableFuture<Parameters> answer;
  private SharedSegment segment;
  private volatile Throwable failure;

  TrainStream(Channel channel, CallOptions options) {
    ClientCalls.asyncBidiStreamingCall(channel.newCall(WireMethods.TRAIN, options), new Observer());
  }

  /** True once the stream failed or ended; it cannot be used any more. */
  boolean broken() {
    return failure != null;
  }

  /**
   * Sends one push ({@code messages}: header, chunks, commit) and waits for the answer.
   *
   * @param into arrays to receive y when they match (see {@link ParametersDecoder}), or null
   * @param segment the shared-memory segment the push names (y is read from it), or null
   * @throws StatusRuntimeException the stream's error (the stream is then broken), or
   *     DEADLINE_EXCEEDED after {@code timeout}
   */
  Parameters step(
      Iterator<Object> messages, float[][] into, SharedSegment segment, Duration timeout) {
    return step(messages, new ParametersDecoder(into), segment, timeout);
  }

  /**
   * As above, with the decoder of the answer ({@link ParametersDecoder} with early names when the
   * push asked for early parameters: y's chunks may then arrive while the push is still sent).
   */
  Parameters step(
      Iterator<Object> messages,
      ParametersDecoder answerDecoder,
      SharedSegment segment,
      Duration timeout) {
    CompletableFuture<Parameters> result = new CompletableFuture<>();
    synchronized (this) {
      if (failure != null) {
        throw Status.fromThrowable(failure).asRuntimeException();
      }
      answer = result;
      decoder = answerDecoder;
      this.segment = segment;
      outgoing = messages;
    }
    send();
    try {
      return result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      cancel("no answer within " + timeout);
      throw Status.DEADLINE_EXCEEDED
          .withDescription("no Train answer within " + timeout)
          .asRuntimeException();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      cancel("interrupted");
      throw Status.CANCELLED.withCause(e).asRuntimeException();
    } catch (ExecutionException e) {
      throw e.getCause() instanceof StatusRuntimeException s
          ? s
          : Status.fromThrowable(e.getCause()).asRuntimeException();
    }
  }

  /** Ends the stream from this side (the server sees the client finish). */
  void close() {
    synchronized (this) {
      if (failure == null) {
        failure = Status.CANCELLED.withDescription("closed").asRuntimeException();
        requests.onCompleted();
      }
    }
  }

  void cancel(String why) {
    synchronized (this) {
      if (failure == null) {
        failure = Status.CANCELLED.withDescription(why).asRuntimeException();
      }
    }
    requests.cancel(why, null);
  }

  /** Writes while the transport is ready; called again by onReady. */
  private synchronized void send() {
    while (outgoing != null && outgoing.hasNext() && requests.isReady() && failure == null) {
      requests.onNext(outgoing.next());
    }
  }

  private synchronized void fail(Throwable t) {
    if (failure == null || failure instanceof StatusRuntimeException s && isLocal(s)) {
      failure = t;
    }
    if (answer != null) {
      answer.completeExceptionally(
          t instanceof StatusRuntimeException ? t : Status.fromThrowable(t).asRuntimeException());
    }
  }

  private static boolean isLocal(StatusRuntimeException s) {
    return s.getStatus().getCode() == Status.Code.CANCELLED;
  }

  private final class Observer implements ClientResponseObserver<Object, Object> {
    @Override
    public void beforeStart(ClientCallStreamObserver<Object> call) {
      synchronized (TrainStream.this) {
        requests = call;
      }
      call.setOnReadyHandler(TrainStream.this::send);
    }

    @Override
    public void onNext(Object m) {
      try {
        synchronized (TrainStream.this) {
          if (answer == null || answer.isDone()) {
            throw ParametersDecoder.dataLoss("Train answer without a push");
          }
          if (m instanceof InboundChunk chunk) {
            decoder.chunk(chunk);
          } else if (m instanceof TrainResponse r && r.hasHeader()) {
            decoder.header(
                r.getHeader().getParameters(),
                r.getHeader().getParametersSentEarly()
                    && r.getHeader().getPush().getOutcome() == PushOutcome.PUSH_OUTCOME_APPLIED);
            if (r.getHeader().getParametersInSharedMemory()) {
              if (segment == null) {
                throw ParametersDecoder.dataLoss("shared-memory answer to a push with chunks");
              }
              decoder.fromSegment(segment);
            }
          } else if (m instanceof TrainResponse r && r.hasEnd()) {
            answer.complete(decoder.end(r.getEnd()));
          } else {
            throw ParametersDecoder.dataLoss("unexpected Train message");
          }
        }
      } catch (RuntimeException e) {
        requests.cancel("bad answer", e);
        fail(e);
      } finally {
        WireMethods.discard(m);
      }
    }

    @Override
    public void onError(Throwable t) {
      fail(t);
    }

    @Override
    public void onCompleted() {
      fail(
          Status.UNAVAILABLE
              .withDescription("Train stream ended by the server")
              .asRuntimeException());
    }
  }
}
