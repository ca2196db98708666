package dev.roadless.optimizer.shard;

import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.RunStatus;
import dev.roadless.proto.optimizer.v1.Sequence;
import io.grpc.Status;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.IntFunction;

/**
 * One run spread over S optimizer servers, seen as one run: the shards' clients (one {@link
 * OptimizerClient} per server, in shard order, each with its own channel that the caller owns) and
 * the {@link ShardPlan} of the run's spec over them. Calls go to every shard in parallel; a failure
 * of any shard is the call's failure, with the shard's status and ErrorInfo unchanged (one error
 * model: the same reasons as one server). With one client it behaves as that client.
 */
public final class ShardedClient {
  /**
   * Threads that wait on the shards' calls (blocking gRPC calls that may wait for other replicas,
   * so not the common fork-join pool, which has one thread per core).
   */
  private static final ExecutorService CALLS =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "roadless-shard-call");
            t.setDaemon(true);
            return t;
          });

  private final List<OptimizerClient> shards;
  private final ShardPlan plan;

  private final Duration unavailableWait;

  /** A sharded client whose sessions wait up to 10 minutes for a shard that is down. */
  public ShardedClient(List<OptimizerClient> shards, RunSpec spec) {
    this(shards, spec, Duration.ofMinutes(10));
  }

  /**
   * @param unavailableWait how long a push waits for a shard that is down (UNAVAILABLE) beyond the
   *     shard client's own retries, before the session's call fails with UNAVAILABLE
   */
  public ShardedClient(List<OptimizerClient> shards, RunSpec spec, Duration unavailableWait) {
    this.shards = List.copyOf(shards);
    this.plan = ShardPlan.of(spec, shards.size());
    this.unavailableWait = unavailableWait;
  }

  /**
   * The client of an existing sharded run, its plan recovered from the shards' specs (for a tool or
   * service that knows the run's id and its shards, not its spec).
   */
  public static ShardedClient recover(List<OptimizerClient> shards, String runId) {
    List<RunStatus> statuses =
        new ShardedClient(shards).onEveryShard(s -> shards.get(s).status(runId));
    RunSpec whole;
    try {
      whole = ShardPlan.recover(statuses.stream().map(RunStatus::getSpec).toList()).spec();
    } catch (IllegalArgumentException e) {
      throw Status.FAILED_PRECONDITION
          .withDescription(
              "run '" + runId + "' is not sharded over these servers: " + e.getMessage())
          .asRuntimeException();
    }
    return new ShardedClient(shards, whole);
  }

  /** Only for calls to every shard before the plan is known. */
  private ShardedClient(List<OptimizerClient> shards) {
    this.shards = List.copyOf(shards);
    this.plan = null;
    this.unavailableWait = Duration.ZERO;
  }

  /**
   * The whole run's status: the slowest shard's step and snapshot step, the whole spec, every group
   * as the slowest shard holding it reports it, pending replicas and refusals of all shards.
   */
  public RunStatus status(String runId) {
    List<RunStatus> all = statuses(runId);
    long step = all.stream().mapToLong(RunStatus::getStep).min().orElseThrow();
    RunStatus.Builder whole =
        all.get(0).toBuilder()
            .setSpec(plan.spec())
            .setStep(step)
            .setSnapshotStep(all.stream().mapToLong(RunStatus::getSnapshotStep).min().orElseThrow())
            .setInitialized(all.stream().allMatch(RunStatus::getInitialized))
            .clearGroups()
            .clearPendingReplicas()
            .clearRefusedPushes();
    Map<String, GroupStatus> groups = new HashMap<>();
    TreeSet<Integer> pending = new TreeSet<>();
    Map<String, Long> refused = new TreeMap<>();
    for (RunStatus s : all) {
      for (GroupStatus g : s.getGroupsList()) {
        GroupStatus before = groups.get(g.getName());
        if (before == null || g.getStep() < before.getStep()) {
          groups.put(g.getName(), g);
        }
      }
      pending.addAll(s.getPendingReplicasList());
      s.getRefusedPushesMap().forEach((k, v) -> refused.merge(k, v, Long::sum));
    }
    for (ParameterGroup g : plan.spec().getParameterGroupsList()) {
      if (groups.containsKey(g.getName())) {
        whole.addGroups(groups.get(g.getName()));
      }
    }
    return whole.addAllPendingReplicas(pending).putAllRefusedPushes(refused).build();
  }

  /** How long a push waits for a shard that is down, beyond the shard client's own retries. */
  public Duration unavailableWait() {
    return unavailableWait;
  }

  public ShardPlan plan() {
    return plan;
  }

  /** The client of shard {@code s}. */
  public OptimizerClient shard(int s) {
    return shards.get(s);
  }

  /** Creates each shard's run, or finds it with the same spec (idempotent, as one server). */
  public void createRun(String runId) {
    onEveryShard(s -> shards.get(s).createRun(runId, plan.shard(s).spec()));
  }

  /** Uploads the whole run's initial values (spec order), each shard its part. */
  public void uploadInitialValues(String runId, float[][] values) {
    float[][][] parts = plan.split(values);
    onEveryShard(s -> shards.get(s).uploadInitialValues(runId, plan.shard(s).names(), parts[s]));
  }

  /** Every shard's status, in shard order. */
  public List<RunStatus> statuses(String runId) {
    return onEveryShard(s -> shards.get(s).status(runId));
  }

  /** The run's step: the slowest shard's (a step is complete when every shard applied it). */
  public long step(String runId) {
    return statuses(runId).stream().mapToLong(RunStatus::getStep).min().orElseThrow();
  }

  /**
   * A sequence of the whole run, every shard's part from one step: the step of the shard furthest
   * ahead, or {@code minStep} if that is later. A shard behind is waited for (GetParameters with
   * min_step) while the replicas bring it forward.
   *
   * @throws io.grpc.StatusRuntimeException ABORTED if the run kept moving on while its shards were
   *     read (training is running; try again), or any shard's failure
   */
  public Parameters parameters(String runId, Sequence sequence, long minStep) {
    List<Parameters> parts = onEveryShard(s -> shards.get(s).parameters(runId, sequence, minStep));
    for (int attempt = 0; attempt < 5; attempt++) {
      long step = parts.stream().mapToLong(Parameters::step).max().orElseThrow();
      List<Parameters> read = parts;
      parts =
          onEveryShard(
              s ->
                  read.get(s).step() == step
                      ? read.get(s)
                      : shards.get(s).parameters(runId, sequence, step));
      if (parts.stream().allMatch(p -> p.step() == step)) {
        return assemble(step, parts);
      }
    }
    throw Status.ABORTED
        .withDescription("run '" + runId + "' kept moving while its shards were read")
        .asRuntimeException();
  }

  /**
   * Changes a group's hyperparameters on every shard that holds part of it, at the step those
   * shards are at (each asked with that {@code expected_step}); between steps only (an idle run, or
   * see {@link ShardedSession#updateHyperparameters} for a replica between its steps).
   *
   * @return every holding shard's group after the change, in shard order
   * @throws io.grpc.StatusRuntimeException ABORTED (STEP_MISMATCH) if the shards are at different
   *     steps (nothing changed) or moved on during the call (the message names the shards that
   *     changed and those that refused); NOT_FOUND (GROUP_NOT_FOUND); any shard's own failure
   */
  public List<GroupStatus> updateHyperparameters(
      String runId, String group, Hyperparameters change) {
    return ShardedHyperparameters.update(this, runId, group, change);
  }

  /**
   * Changes a group's hyperparameters on every shard that holds part of it, only while that shard
   * is at {@code expectedStep}. A shard that refuses but already holds every changed value (an
   * earlier attempt reached it) counts as changed, so a retry with the same step after a partial
   * change converges.
   *
   * @throws io.grpc.StatusRuntimeException ABORTED (STEP_MISMATCH) naming the shards that changed
   *     and those that refused with their steps; NOT_FOUND (GROUP_NOT_FOUND); any shard's failure
   */
  public List<GroupStatus> updateHyperparameters(
      String runId, String group, Hyperparameters change, long expectedStep) {
    return ShardedHyperparameters.update(this, runId, group, change, expectedStep);
  }

  /** A replica's session on every shard; see {@link ShardedSession}. */
  public ShardedSession session(String runId, int replica, DataType dtype, int replaySteps) {
    return new ShardedSession(this, runId, replica, dtype, replaySteps);
  }

  Parameters assemble(long step, List<Parameters> parts) {
    float[][][] values = new float[parts.size()][][];
    for (int s = 0; s < values.length; s++) {
      Parameters p = parts.get(s);
      if (!p.names().equals(plan.shard(s).names())) {
        throw Status.FAILED_PRECONDITION
            .withDescription("shard " + s + " holds " + p.names() + ", not its planned tensors")
            .asRuntimeException();
      }
      values[s] = p.values();
    }
    return new Parameters(step, plan.names(), plan.assemble(values));
  }

  /** Runs {@code call} for every shard in parallel; the first failure is thrown as it was. */
  <T> List<T> onEveryShard(IntFunction<T> call) {
    return ShardCalls.onEvery(shards.size(), call, CALLS);
  }

  static <T> CompletableFuture<T> async(java.util.function.Supplier<T> call) {
    return CompletableFuture.supplyAsync(call, CALLS);
  }
}
