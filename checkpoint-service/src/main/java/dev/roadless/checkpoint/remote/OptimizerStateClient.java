package dev.roadless.checkpoint.remote;

import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.ClientStreams;
import dev.roadless.optimizer.client.Resilience;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.optimizer.state.StateReader;
import dev.roadless.optimizer.state.StateWriter;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import io.grpc.Channel;
import io.grpc.Status;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.TimeUnit;

/**
 * Moves a run's full optimizer state between the optimizer service and a state file in the one
 * state form ({@link StateCodec}): ExportState into a file, a file into ImportState. Both are
 * idempotent on the optimizer, so UNAVAILABLE is retried from the start ({@link Resilience}); each
 * attempt has the options' wait deadline (states can be large). The caller owns the channel and
 * maps failures with {@link Upstream#optimizer}.
 */
public final class OptimizerStateClient implements StateTransfer {
  private final OptimizerServiceGrpc.OptimizerServiceBlockingStub blocking;
  private final OptimizerServiceGrpc.OptimizerServiceStub async;
  private final ClientOptions options;
  private final Resilience resilience;

  public OptimizerStateClient(Channel channel, ClientOptions options) {
    this.blocking = OptimizerServiceGrpc.newBlockingStub(channel);
    this.async = OptimizerServiceGrpc.newStub(channel);
    this.options = options;
    this.resilience = Resilience.of("roadless-state-transfer", options);
  }

  /**
   * Writes the run's ExportState stream into {@code file}, replacing what an interrupted attempt
   * left. All messages are from one step.
   *
   * @return the export's header
   */
  @Override
  public StateHeader export(String runId, Path file) {
    return resilience.call(
        () -> {
          Iterator<ExportStateResponse> stream =
              blocking
                  .withDeadlineAfter(options.waitDeadline().toMillis(), TimeUnit.MILLISECONDS)
                  .exportState(ExportStateRequest.newBuilder().setRunId(runId).build());
          StateHeader header = null;
          try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
            StateWriter writer = StateCodec.writer(out);
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
              writer.write(m);
            }
            if (!writer.ended()) {
              throw Status.UNAVAILABLE
                  .withDescription("the export stream ended early")
                  .asRuntimeException();
            }
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          } catch (IllegalStateException e) {
            throw Status.DATA_LOSS.withDescription(e.getMessage()).asRuntimeException();
          }
          return header;
        });
  }

  /**
   * Creates run {@code runId} from a state file through ImportState. The file is verified as it
   * streams; the commit is sent only after its checksum matched, so a bad file cancels the import.
   */
  @Override
  public ImportStateResponse importState(Path file, String runId) {
    return resilience.call(
        () -> {
          // The file is opened with O_NOFOLLOW and its size read from the open descriptor.
          try (java.nio.channels.FileChannel ch =
                  java.nio.channels.FileChannel.open(
                      file,
                      java.nio.file.StandardOpenOption.READ,
                      java.nio.file.LinkOption.NOFOLLOW_LINKS);
              InputStream in =
                  new BufferedInputStream(java.nio.channels.Channels.newInputStream(ch), 1 << 16)) {
            return send(StateCodec.reader(in, ch.size()), runId);
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
  }

  /** Streams the file's messages as an import under {@code runId} and waits for the answer. */
  private ImportStateResponse send(StateReader reader, String runId) {
    Iterator<ImportStateRequest> requests =
        new Iterator<>() {
          private ExportStateResponse next;
          private boolean done;

          @Override
          public boolean hasNext() {
            if (next == null && !done) {
              try {
                next = reader.next();
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
              done = next == null;
            }
            return next != null;
          }

          @Override
          public ImportStateRequest next() {
            if (!hasNext()) {
              throw new NoSuchElementException();
            }
            ExportStateResponse m = next;
            next = null;
            return toImport(m, runId);
          }
        };
    return ClientStreams.send(
        async.withDeadlineAfter(options.waitDeadline().toMillis(), TimeUnit.MILLISECONDS)
            ::importState,
        requests);
  }

  /** One stored message as an ImportState message, the header renamed to {@code runId}. */
  private static ImportStateRequest toImport(ExportStateResponse m, String runId) {
    return switch (m.getItemCase()) {
      case HEADER ->
          ImportStateRequest.newBuilder()
              .setHeader(m.getHeader().toBuilder().setRunId(runId))
              .build();
      case CHUNK -> ImportStateRequest.newBuilder().setChunk(m.getChunk()).build();
      case END ->
          ImportStateRequest.newBuilder()
              .setCommit(StreamCommit.newBuilder().setTotalElements(m.getEnd().getTotalElements()))
              .build();
      default -> throw new IllegalStateException("empty message in a state file");
    };
  }
}
