package dev.roadless.checkpoint.remote;

import dev.roadless.checkpoint.format.StateFile;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.ClientStreams;
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
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
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

  /** Streams the file's messages as an import under {@code runId} and waits for the answer. */
  private ImportStateResponse send(Iterator<ExportStateResponse> messages, String runId) {
    Iterator<ImportStateRequest> requests =
        new Iterator<>() {
          @Override
          public boolean hasNext() {
            return messages.hasNext();
          }

          @Override
          public ImportStateRequest next() {
            return StateFile.toImport(messages.next(), runId);
          }
        };
    return ClientStreams.send(
        async.withDeadlineAfter(options.waitDeadline().toMillis(), TimeUnit.MILLISECONDS)
            ::importState,
        requests);
  }
}
