package dev.roadless.optimizer.client;

import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import io.grpc.StatusRuntimeException;
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
 * happened. Not thread-safe: one session per replica thread.
 */
public final class ReplicaSession implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ReplicaSession.class.getName());

  private final OptimizerClient client;
  private final String runId;
  private final int replica;
  private final DataType dtype;
  private final boolean reuseArrays;
  private TrainStream stream;

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
   * restarted from an older snapshot. UNAVAILABLE is retried as the client's options say.
   */
  public Parameters next(Parameters at, float[][] gradient) {
    float[][] into = reuseArrays ? at.values() : null;
    try {
      return client.call(() -> attempt(at, gradient, into));
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

  private Parameters attempt(Parameters at, float[][] gradient, float[][] into) {
    if (stream == null || stream.broken()) {
      if (stream != null) {
        // The server went away (or refused): our push may be lost with it. Push again.
        LOG.info("replica " + replica + ": Train stream broken; pushing again on a new one");
      }
      stream = client.openTrain();
    }
    PushMessages<TrainRequest> messages =
        new PushMessages<>(
            TrainRequest.newBuilder()
                .setHeader(PushMessages.header(runId, replica, at.step(), dtype))
                .build(),
            c -> TrainRequest.newBuilder().setChunk(c).build(),
            c -> TrainRequest.newBuilder().setCommit(c).build(),
            at.names(),
            gradient,
            dtype,
            client.options().chunkBytes());
    return stream.step(messages, into, client.options().waitDeadline());
  }
}
