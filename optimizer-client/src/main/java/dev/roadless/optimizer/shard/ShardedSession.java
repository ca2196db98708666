package dev.roadless.optimizer.shard;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.Sequence;
import io.github.resilience4j.circuitbreaker.CallNotPermittedException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.logging.Logger;

/**
 * One trainer replica's side of a sharded run: the same loop as {@link ReplicaSession}, against
 * every shard at once, presenting one run.
 *
 * <pre>{@code
 * Parameters y = session.current();
 * while (y.step() < steps) {
 *   y = session.next(y, gradientAt(y));   // whole tensors in, whole tensors out
 * }
 * }</pre>
 *
 * <p>{@link #next} cuts the gradient by the plan and pushes every shard's part on that shard's own
 * {@link ReplicaSession} (its Train stream, shared memory when on the same host), all in parallel,
 * and returns y of the next step put together whole. A step is complete when every shard applied
 * it; {@code next} never returns parameters of two steps.
 *
 * <ul>
 *   <li>A shard that is down makes its push wait and retry (UNAVAILABLE, also after the client's
 *       own retries ran out) for up to the client's {@link ShardedClient#unavailableWait}; the
 *       other shards' pushes are idempotent, so nothing is torn or applied twice.
 *   <li>A shard that came back from an older snapshot (step j below the run's k) is brought to step
 *       k by this replica re-pushing its own gradients of steps j..k-1, kept for the last {@code
 *       replaySteps} steps; every replica does the same, so the shard replays exactly what it had
 *       applied before. Keep {@code replaySteps} at least the servers' {@code
 *       --snapshot-every-steps} (it costs a copy of the gradient per kept step); a shard further
 *       behind fails the call with FAILED_PRECONDITION (restore the run from a state checkpoint).
 *   <li>A non-finite gradient is refused (INVALID_ARGUMENT, NON_FINITE_GRADIENT) before any shard
 *       sees it, so no shard applies a step another refused.
 *   <li>Any other refusal of a shard (ABORTED, INVALID_ARGUMENT, ...) is the call's, as on one
 *       server.
 * </ul>
 *
 * Not thread-safe: one session per replica thread.
 */
public final class ShardedSession implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ShardedSession.class.getName());

  private final ShardedClient client;
  private final String runId;
  private final int replica;
  private final int replaySteps;
  private final List<ReplicaSession> sessions = new ArrayList<>();

  /** This replica's pushes of the last replaySteps steps, by step, cut per shard. */
  private final TreeMap<Long, float[][][]> pushed = new TreeMap<>();

  ShardedSession(ShardedClient client, String runId, int replica, DataType dtype, int replaySteps) {
    if (replaySteps < 0) {
      throw new IllegalArgumentException("replaySteps must be >= 0");
    }
    this.client = client;
    this.runId = runId;
    this.replica = replica;
    this.replaySteps = replaySteps;
    for (int s = 0; s < client.plan().size(); s++) {
      sessions.add(new ReplicaSession(client.shard(s), runId, replica, dtype));
    }
  }

  /** y of the whole run at one step (the shard furthest ahead's; a shard behind is waited for). */
  public Parameters current() {
    return client.parameters(runId, Sequence.SEQUENCE_TRAIN, 0);
  }

  /**
   * Pushes the whole gradient computed at {@code at} (spec order) to every shard and returns y of
   * step {@code at.step() + 1}, whole.
   */
  public Parameters next(Parameters at, float[][] gradient) {
    long k = at.step();
    if (client.plan().size() > 1) {
      requireFinite(gradient);
    }
    float[][][] parts = client.plan().split(gradient);
    if (replaySteps > 0) {
      pushed.put(k, copy(parts));
      while (pushed.size() > replaySteps) {
        pushed.pollFirstEntry();
      }
    }
    List<CompletableFuture<Parameters>> futures = new ArrayList<>();
    for (int s = 0; s < parts.length; s++) {
      int shard = s;
      futures.add(ShardedClient.async(() -> pushToShard(shard, k, parts[shard])));
    }
    List<Parameters> answers = ShardCalls.join(futures);
    long step = answers.get(0).step();
    for (Parameters p : answers) {
      if (p.step() != step) {
        throw Status.ABORTED
            .withDescription(
                "run '"
                    + runId
                    + "' shards answered steps "
                    + answers.stream().map(Parameters::step).toList())
            .asRuntimeException();
      }
    }
    return client.assemble(step, answers);
  }

  /**
   * Changes a group's hyperparameters on every shard holding it, for the step after {@code at} (y
   * as {@link #current} or {@link #next} returned it, before this replica pushes its gradient). In
   * a SYNC run no shard can complete the next step until this replica pushes, so every shard
   * applies the change at the same step; a shard that came back behind is first brought to {@code
   * at.step()} by this replica's kept pushes. Call it from one replica (every replica's call would
   * apply the same change again, which is harmless).
   *
   * @return every holding shard's group after the change, in shard order
   * @throws StatusRuntimeException ABORTED (STEP_MISMATCH) naming the shards that changed and those
   *     that refused (a shard ahead of {@code at}: call it before pushing); FAILED_PRECONDITION if
   *     a shard is further behind than the kept pushes
   */
  public List<GroupStatus> updateHyperparameters(
      Parameters at, String group, Hyperparameters change) {
    long k = at.step();
    for (int attempt = 0; ; attempt++) {
      List<ShardedHyperparameters.Outcome> outcomes =
          ShardedHyperparameters.apply(client, runId, group, change, k);
      List<ShardedHyperparameters.Outcome> behind =
          outcomes.stream().filter(o -> !o.changed() && o.step() < k).toList();
      boolean ahead = outcomes.stream().anyMatch(o -> !o.changed() && o.step() > k);
      if (ahead || (!behind.isEmpty() && attempt >= 3)) {
        throw ShardedHyperparameters.refusal(runId, group, k, outcomes);
      }
      if (behind.isEmpty()) {
        return outcomes.stream().map(ShardedHyperparameters.Outcome::group).toList();
      }
      for (ShardedHyperparameters.Outcome o : behind) {
        catchUp(o.shard(), k);
      }
    }
  }

  /** Brings shard {@code s} to step {@code k} by re-pushing this replica's kept gradients. */
  private void catchUp(int s, long k) {
    long j = client.shard(s).status(runId).getStep();
    while (j < k) {
      float[][][] earlier = pushed.get(j);
      if (earlier == null) {
        throw Status.FAILED_PRECONDITION
            .withDescription(
                "shard "
                    + s
                    + " of run '"
                    + runId
                    + "' is at step "
                    + j
                    + " and replica "
                    + replica
                    + " no longer keeps that push; restore the run from a state checkpoint")
            .asRuntimeException();
      }
      LOG.info("replica " + replica + ": shard " + s + " is at step " + j + "; pushing it again");
      j = pushUntilAnswered(s, j, earlier[s]).step();
    }
  }

  /** Shard {@code s}'s y after step {@code k}, bringing it forward first if it came back behind. */
  private Parameters pushToShard(int s, long k, float[][] part) {
    Parameters y = pushUntilAnswered(s, k, part);
    while (y.step() <= k) {
      long j = y.step();
      float[][][] earlier = j == k ? null : pushed.get(j);
      if (j < k && earlier == null) {
        throw Status.FAILED_PRECONDITION
            .withDescription(
                "shard "
                    + s
                    + " of run '"
                    + runId
                    + "' came back at step "
                    + j
                    + " but replica "
                    + replica
                    + " kept its pushes only from step "
                    + (pushed.isEmpty() ? k : pushed.firstKey())
                    + "; restore the run from a state checkpoint")
            .asRuntimeException();
      }
      LOG.info("replica " + replica + ": shard " + s + " is at step " + j + "; pushing it again");
      y = pushUntilAnswered(s, j, j == k ? part : earlier[s]);
    }
    return y;
  }

  /** One push to one shard, retried while the shard is unavailable, up to the wait deadline. */
  private Parameters pushUntilAnswered(int s, long step, float[][] part) {
    long deadline = System.nanoTime() + client.unavailableWait().toNanos();
    Parameters at = new Parameters(step, client.plan().shard(s).names(), null);
    while (true) {
      try {
        return sessions.get(s).next(at, part);
      } catch (StatusRuntimeException | CallNotPermittedException e) {
        boolean unavailable =
            e instanceof CallNotPermittedException
                || ((StatusRuntimeException) e).getStatus().getCode() == Status.Code.UNAVAILABLE;
        if (!unavailable || System.nanoTime() > deadline) {
          throw e;
        }
        LOG.info("replica " + replica + ": shard " + s + " unavailable; still retrying");
      }
    }
  }

  /**
   * Refuses a non-finite gradient before any shard sees it, as one server would: a shard refusing
   * its part while the others applied theirs would tear the step.
   */
  private void requireFinite(float[][] gradient) {
    for (int t = 0; t < gradient.length; t++) {
      float[] g = gradient[t];
      for (int i = 0; i < g.length; i++) {
        if (!Float.isFinite(g[i])) {
          String name = client.plan().names().get(t);
          throw Errors.toStatus(
              RoadlessException.of(
                      ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT,
                      "tensor '" + name + "' element " + i + " is " + g[i] + "; no shard saw it")
                  .with("tensor", name)
                  .with("element", i)
                  .build());
        }
      }
    }
  }

  private static float[][][] copy(float[][][] parts) {
    float[][][] out = new float[parts.length][][];
    for (int s = 0; s < parts.length; s++) {
      out[s] = new float[parts[s].length][];
      for (int t = 0; t < parts[s].length; t++) {
        out[s][t] = parts[s][t].clone();
      }
    }
    return out;
  }

  /** Ends every shard's Train stream. */
  @Override
  public void close() {
    sessions.forEach(ReplicaSession::close);
  }
}
