package dev.roadless.checkpoint.remote;

import dev.roadless.checkpoint.format.StateFile;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.StateHeader;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.retry.Retry;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Moves a run's full optimizer state between the optimizer service and a state file: ExportState
 * into a file, a file into ImportState. Both are idempotent on the optimizer, so UNAVAILABLE is
 * retried from the start with backoff; each attempt has the options' wait deadline (states can be
 * large). The caller owns the channel and maps failures with {@link Upstream#optimizer}.
 */
public final class StateTransfer {
  private final OptimizerServiceGrpc.OptimizerServiceBlockingStub blocking;
  private final OptimizerServiceGrpc.OptimizerServiceStub async;
  private final ClientOptions options;
  private final Retry retry;
  private final CircuitBreaker breaker;

  public StateTransfer(Channel channel, ClientOptions options) {
    this.blocking = OptimizerServiceGrpc.newBlockingStub(channel);
    this.async = OptimizerServiceGrpc.newStub(channel);
    this.options = options;
    this.retry = Upstream.retry("roadless-state-transfer", options);
    this.breaker = Upstream.breaker("roadless-state-transfer");
  }

  /**
   * Writes the run's ExportState stream into {@code file} (see {@link StateFile}), replacing what
   * an interrupted attempt left. All messages are from one step.
   *
   * @return the export's header
   */
  public StateHeader export(String runId, Path file) {
    return Upstream.call(
        retry,
        breaker,
        () -> {
          Iterator<ExportStateResponse> stream =
              blocking
                  .withDeadlineAfter(options.waitDeadline().toMillis(), TimeUnit.MILLISECONDS)
                  .exportState(ExportStateRequest.newBuilder().setRunId(runId).build());
          StateHeader header = null;
          boolean ended = false;
          try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
            while (stream.hasNext()) {
              ExportStateResponse m = stream.next();
              if (header == null && !m.hasHeader()) {
                throw Status.DATA_LOSS
                    .withDescription("export without header")
                    .asRuntimeException();
              }
              if (m.hasHeader()) {
                header = m.getHeader();
              }
              ended = m.hasEnd();
              StateFile.write(m, out);
            }
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
          if (header == null || !ended) {
            throw Status.UNAVAILABLE
                .withDescription("the export stream ended early")
                .asRuntimeException();
          }
          return header;
        });
  }

  /** Creates run {@code runId} from a state file through ImportState. */
  public ImportStateResponse importState(Path file, String runId) {
    return Upstream.call(
        retry,
        breaker,
        () -> {
          try (StateFile.Reader reader = new StateFile.Reader(file)) {
            return send(reader, runId);
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
  }

  /** A client stream that sends only while the transport is ready, then waits for the answer. */
  private ImportStateResponse send(Iterator<ExportStateResponse> messages, String runId) {
    CompletableFuture<ImportStateResponse> result = new CompletableFuture<>();
    async
        .withDeadlineAfter(options.waitDeadline().toMillis(), TimeUnit.MILLISECONDS)
        .importState(
            new ClientResponseObserver<ImportStateRequest, ImportStateResponse>() {
              private ImportStateResponse response;

              @Override
              public void beforeStart(ClientCallStreamObserver<ImportStateRequest> requests) {
                requests.setOnReadyHandler(
                    new Runnable() {
                      private boolean done;

                      @Override
                      public synchronized void run() {
                        try {
                          while (!done && requests.isReady() && messages.hasNext()) {
                            requests.onNext(StateFile.toImport(messages.next(), runId));
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
              public void onNext(ImportStateResponse value) {
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
      throw Status.CANCELLED.withCause(e).asRuntimeException();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException re) {
        throw re;
      }
      throw Status.UNKNOWN.withCause(e.getCause()).asRuntimeException();
    }
  }
}
