package dev.roadless.checkpoint.service;

import dev.roadless.checkpoint.remote.RunReader;
import dev.roadless.checkpoint.remote.StateTransfer;
import dev.roadless.checkpoint.remote.TrainerClient;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Manifest;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.common.RunIds;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.checkpoint.v1.CheckpointKind;
import dev.roadless.proto.checkpoint.v1.RestoreStateRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import java.time.Clock;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutorService;

/**
 * The checkpoint service's domain face: saving eval and state checkpoints, restoring, and reading
 * and deleting what the store holds. The gRPC adapter only converts to and from the wire.
 */
public final class Checkpoints {
  /** A committed (or found identical) checkpoint and what retention deleted after it. */
  public record Saved(CheckpointStore.Commit commit, List<String> retentionDeleted) {}

  private final EvalCheckpointer eval;
  private final StateCheckpointer state;
  private final CheckpointStore store;

  /**
   * @param optimizer the optimizer client (the caller owns its channel)
   * @param optimizerTarget the optimizer's address, for messages
   * @param transfer ExportState/ImportState on the same optimizer
   * @param trainers the trainer replicas, in configuration order (may be empty)
   * @param executor runs the replicas' calls in parallel
   */
  public Checkpoints(
      OptimizerClient optimizer,
      String optimizerTarget,
      StateTransfer transfer,
      List<TrainerClient> trainers,
      ExecutorService executor,
      CheckpointStore store,
      Retention retention,
      Clock clock) {
    this(
        RunReader.of(optimizer),
        optimizerTarget,
        transfer,
        trainers,
        executor,
        store,
        retention,
        clock);
  }

  /**
   * As above, reading x and the run's status through {@code optimizer}: one server, or the shards
   * of sharded runs ({@link RunReader#sharded}).
   */
  public Checkpoints(
      RunReader optimizer,
      String optimizerTarget,
      StateTransfer transfer,
      List<TrainerClient> trainers,
      ExecutorService executor,
      CheckpointStore store,
      Retention retention,
      Clock clock) {
    this.store = store;
    this.eval =
        new EvalCheckpointer(
            optimizer,
            optimizerTarget,
            new TrainerPool(trainers, executor),
            store,
            retention,
            clock);
    this.state = new StateCheckpointer(transfer, optimizerTarget, store, retention, clock);
  }

  /** Saves an eval checkpoint (see the proto's SaveCheckpoint). */
  public Saved saveEval(SaveCheckpointRequest request) {
    return eval.save(request);
  }

  /** Saves a state checkpoint (see the proto's SaveStateCheckpoint). */
  public Saved saveState(SaveStateCheckpointRequest request) {
    return state.save(request);
  }

  /** Creates a run from a state checkpoint (see the proto's RestoreState). */
  public ImportStateResponse restore(RestoreStateRequest request) {
    return state.restore(request);
  }

  /** Manifests, filtered, sorted by run, step, commit time and name. */
  public List<Manifest> list(String runId, CheckpointKind kind) {
    if (!runId.isEmpty()) {
      RunIds.check(runId);
    }
    String k =
        switch (kind) {
          case CHECKPOINT_KIND_EVAL -> Manifest.EVAL;
          case CHECKPOINT_KIND_STATE -> Manifest.STATE;
          default -> null;
        };
    return store.list().stream()
        .filter(m -> runId.isEmpty() || m.runId().equals(runId))
        .filter(m -> k == null || m.kind().equals(k))
        .sorted(
            Comparator.comparing(Manifest::runId)
                .thenComparingLong(Manifest::step)
                .thenComparing(Manifest::createTime)
                .thenComparing(Manifest::name))
        .toList();
  }

  /** The verified manifest (every file's SHA-256 checked). */
  public Manifest verified(String name) {
    return store.verified(name);
  }

  public boolean delete(String name, boolean allowMissing) {
    return store.delete(name, allowMissing);
  }

  public CheckpointStore store() {
    return store;
  }
}
