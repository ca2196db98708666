package dev.roadless.optimizer.client;

import com.google.protobuf.ByteString;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryResponse;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.logging.Logger;

/**
 * One trainer replica's side of the training protocol, robust to optimizer restarts. The loop is
 *
 * <pre>{@code
 * Parameters y = session.current();
 * while (y.step() < steps) {
 *   y = session.next(y, gradientAt(y));   // the gradient of step y.step(), computed at y
 * }
 * }</pre>
 *
 * <p>{@link #next} pushes the gradient on the replica's Train stream (one bidirectional RPC for the
 * whole loop) and returns the answer, y of the following step. If the server went away, it opens a
 * new stream and pushes again once the server is back (pushes are idempotent). If the server came
 * back from an older snapshot, it returns y at the server's step instead, so the caller recomputes
 * from there; with deterministic data sharding the run continues exactly as if nothing had
 * happened.
 *
 * <p>On the server's host the session moves the tensors through shared memory instead of the socket
 * (AttachSharedMemory, when {@link ClientOptions#sharedMemory} is on): it writes the gradient into
 * the replica's segment, pushes a header and a commit, and reads y from the segment. When the
 * server offers no segment, or its file is not visible here (another host or container), it sends
 * chunks as usual; it asks again on every new stream, so a restarted server is picked up. Not
 * thread-safe: one session per replica thread.
 */
public final class ReplicaSession implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ReplicaSession.class.getName());

  /** How many times one push is sent when the server answers PUSH_VOIDED each time. */
  static final int MAX_VOIDED = 5;

  private final OptimizerClient client;
  private final String runId;
  private final int replica;
  private final DataType dtype;
  private final boolean reuseArrays;
  private TrainStream stream;
  private SharedSegment segment;

  public ReplicaSession(OptimizerClient client, String runId, int replica, DataType dtype) {
    this(client, runId, replica, dtype, false);
  }

  /**
   * @param reuseArrays when true, {@link #next} writes the new y into the arrays of the parameters
   *     it is given (which the caller must then no longer use) instead of allocating 4 bytes per
   *     parameter every step
   */
  public ReplicaSession(
      OptimizerClient client, String runId, int replica, DataType dtype, boolean reuseArrays) {
    this.client = client;
    this.runId = runId;
    this.replica = replica;
    this.dtype = dtype;
    this.reuseArrays = reuseArrays;
  }

  /** y at the run's current step. */
  public Parameters current() {
    return client.parameters(runId, Sequence.SEQUENCE_TRAIN, 0);
  }

  /**
   * Pushes the gradient computed at {@code at} and returns the TRAIN parameters to compute the next
   * gradient at: normally y at {@code at.step() + 1}, or y at an earlier step when the server
   * restarted from an older snapshot. UNAVAILABLE is retried as the client's options say;
   * PUSH_VOIDED (the other replica's push of the step was refused after ours was summed with it) is
   * pushed again, up to {@value #MAX_VOIDED} times in all.
   */
  public Parameters next(Parameters at, float[][] gradient) {
    float[][] into = reuseArrays ? at.values() : null;
    try {
      for (int voided = 1; ; voided++) {
        try {
          return client.call(() -> attempt(at, gradient, into));
        } catch (StatusRuntimeException e) {
          if (!"PUSH_VOIDED".equals(OptimizerClient.reason(e)) || voided >= MAX_VOIDED) {
            throw e;
          }
          // The other replica's push was refused after ours was summed with it: the state is
          // unchanged, and the same gradient is pushed again (on a new stream).
          LOG.info("replica " + replica + ": push of step " + at.step() + " voided; pushing again");
        }
      }
    } catch (StatusRuntimeException e) {
      if ("STEP_IN_FUTURE".equals(OptimizerClient.reason(e))) {
        Parameters back = current();
        LOG.info("replica " + replica + ": server is at step " + back.step() + ", resuming there");
        return back;
      }
      throw e;
    }
  }

  /** Ends the Train stream; a later {@link #next} opens a new one. */
  @Override
  public void close() {
    if (stream != null) {
      stream.close();
      stream = null;
    }
  }

  /** True while pushes go through the server's shared-memory segment. */
  public boolean usingSharedMemory() {
    return segment != null;
  }

  private Parameters attempt(Parameters at, float[][] gradient, float[][] into) {
    if (stream == null || stream.broken()) {
      if (stream != null) {
        // The server went away (or refused): our push may be lost with it. Push again.
        LOG.info("replica " + replica + ": Train stream broken; pushing again on a new one");
      }
      stream = client.openTrain();
      segment = client.options().sharedMemory() ? attachSegment(gradient) : null;
    }
    if (segment != null) {
      try {
        return pushThroughSegment(at, gradient, into);
      } catch (StatusRuntimeException e) {
        if (!"SHARED_MEMORY_UNKNOWN".equals(OptimizerClient.reason(e))) {
          throw e;
        }
        // The server lost the segment (a restart, or the run was re-created): ask again.
        LOG.info("replica " + replica + ": shared-memory segment unknown to the server; attaching");
        stream = client.openTrain();
        segment = attachSegment(gradient);
        if (segment != null) {
          return pushThroughSegment(at, gradient, into);
        }
      }
    }
    PushMessages<TrainRequest> messages =
        new PushMessages<>(
            TrainRequest.newBuilder()
                .setHeader(
                    // With early parameters, y's chunks stream back while ours are still sent (a
                    // server that does not know the field answers after the step, as before).
                    PushMessages.header(runId, replica, at.step(), dtype).toBuilder()
                        .setEarlyParameters(client.options().earlyParameters()))
                .build(),
            c -> TrainRequest.newBuilder().setChunk(c).build(),
            c -> TrainRequest.newBuilder().setCommit(c).build(),
            at.names(),
            gradient,
            dtype,
            client.options().chunkBytes());
    int[] sizes = new int[gradient.length];
    for (int t = 0; t < sizes.length; t++) {
      sizes[t] = gradient[t].length;
    }
    return stream.step(
        messages,
        new ParametersDecoder(into, at.names(), sizes),
        null,
        client.options().waitDeadline());
  }

  private Parameters pushThroughSegment(Parameters at, float[][] gradient, float[][] into) {
    segment.writeGradient(gradient);
    List<Object> messages =
        List.of(
            TrainRequest.newBuilder()
                .setHeader(
                    PushMessages.header(runId, replica, at.step(), DataType.DATA_TYPE_FLOAT32)
                        .toBuilder()
                        .setSharedMemoryToken(ByteString.copyFrom(segment.token())))
                .build(),
            TrainRequest.newBuilder()
                .setCommit(StreamCommit.newBuilder().setTotalElements(segment.totalElements()))
                .build());
    return stream.step(messages.iterator(), into, segment, client.options().waitDeadline());
  }

  /**
   * Maps the replica's segment if the server offers one and its file is visible from here; null
   * (send chunks) otherwise. Only float32 pushes use shared memory.
   */
  private SharedSegment attachSegment(float[][] gradient) {
    if (dtype != DataType.DATA_TYPE_FLOAT32) {
      return null;
    }
    long[] sizes = new long[gradient.length];
    for (int t = 0; t < sizes.length; t++) {
      sizes[t] = gradient[t].length;
    }
    try {
      AttachSharedMemoryResponse probe = client.attachSharedMemory(runId, replica, new byte[0]);
      byte[] proof = java.nio.file.Files.readAllBytes(Path.of(probe.getProbePath()));
      AttachSharedMemoryResponse r = client.attachSharedMemory(runId, replica, proof);
      if (r.getPath().isEmpty()) {
        throw new IllegalStateException("the probe file " + probe.getProbePath() + " is another");
      }
      SharedSegment mapped =
          SharedSegment.open(Path.of(r.getPath()), r.getToken().toByteArray(), sizes);
      LOG.info("replica " + replica + ": using shared memory " + r.getPath());
      return mapped;
    } catch (StatusRuntimeException e) {
      LOG.info(
          "replica "
              + replica
              + ": no shared memory ("
              + e.getStatus().getCode()
              + " "
              + OptimizerClient.reason(e)
              + "); sending chunks");
    } catch (IOException | IllegalStateException | UnsupportedOperationException e) {
      LOG.info(
          "replica " + replica + ": shared memory not visible here (" + e + "); sending chunks");
    }
    return null;
  }
}
