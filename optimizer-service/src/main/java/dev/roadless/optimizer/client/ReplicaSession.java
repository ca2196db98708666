package dev.roadless.optimizer.client;

import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.Sequence;
import io.grpc.Status;
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
 * <p>{@link #next} pushes the gradient and waits for the following step's y. If the server went
 * away, it pushes again once the server is back (pushes are idempotent). If the server came back
 * from an older snapshot, it returns y at the server's step instead, so the caller recomputes from
 * there; with deterministic data sharding the run continues exactly as if nothing had happened.
 */
public final class ReplicaSession {
  private static final Logger LOG = Logger.getLogger(ReplicaSession.class.getName());

  private final OptimizerClient client;
  private final String runId;
  private final int replica;
  private final DataType dtype;

  public ReplicaSession(OptimizerClient client, String runId, int replica, DataType dtype) {
    this.client = client;
    this.runId = runId;
    this.replica = replica;
    this.dtype = dtype;
  }

  /** y at the run's current step. */
  public Parameters current() {
    return client.parameters(runId, Sequence.SEQUENCE_TRAIN, 0);
  }

  /**
   * Pushes the gradient computed at {@code at} and returns the TRAIN parameters to compute the next
   * gradient at: normally y at {@code at.step() + 1}, or y at an earlier step when the server
   * restarted from an older snapshot.
   */
  public Parameters next(Parameters at, float[][] gradient) {
    while (true) {
      PushGradientsResponse pushed;
      try {
        pushed = client.push(runId, replica, at.step(), at.names(), gradient, dtype);
      } catch (StatusRuntimeException e) {
        if ("STEP_IN_FUTURE".equals(OptimizerClient.reason(e))) {
          Parameters back = current();
          LOG.info(
              "replica " + replica + ": server is at step " + back.step() + ", resuming there");
          return back;
        }
        throw e;
      }
      try {
        return client.awaitParameters(runId, Sequence.SEQUENCE_TRAIN, pushed.getStep() + 1);
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
          throw e;
        }
        // The server went away while we waited: our push may be lost with it. Push again.
        LOG.info("replica " + replica + ": server unavailable while waiting; pushing again");
      }
    }
  }
}
