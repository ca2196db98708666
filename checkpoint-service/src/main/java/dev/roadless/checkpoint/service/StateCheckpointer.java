package dev.roadless.checkpoint.service;

import dev.roadless.checkpoint.remote.StateTransfer;
import dev.roadless.checkpoint.remote.Upstream;
import dev.roadless.checkpoint.store.CheckpointNames;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Manifest;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.common.RunIds;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.proto.checkpoint.v1.RestoreStateRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.StateHeader;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Logger;

/**
 * State checkpoints: the optimizer's ExportState stream written unchanged to {@code
 * optimizer-state.binpb} (see {@link StateCodec}), and RestoreState, which verifies the file and
 * imports it under a new run id. The optimizer guarantees that an imported run continues
 * bit-identically.
 */
final class StateCheckpointer {
  private static final Logger LOG = Logger.getLogger(StateCheckpointer.class.getName());

  /** The data file's name inside a state checkpoint. */
  public static final String FILE = "optimizer-state.binpb";

  private final StateTransfer transfer;
  private final String optimizerTarget;
  private final CheckpointStore store;
  private final Retention retention;
  private final Clock clock;

  StateCheckpointer(
      StateTransfer transfer,
      String optimizerTarget,
      CheckpointStore store,
      Retention retention,
      Clock clock) {
    this.transfer = transfer;
    this.optimizerTarget = optimizerTarget;
    this.store = store;
    this.retention = retention;
    this.clock = clock;
  }

  Checkpoints.Saved save(SaveStateCheckpointRequest request) {
    String runId = request.getRunId();
    RunIds.check(runId);
    if (!request.getName().isEmpty()) {
      CheckpointNames.check(request.getName(), "name");
    }
    AtomicReference<StateHeader> header = new AtomicReference<>();
    CheckpointStore.Commit commit =
        store.commit(
            List.of(
                new CheckpointStore.StagedFile(
                    FILE,
                    StateCodec.FORMAT,
                    path ->
                        header.set(
                            Upstream.optimizer(
                                optimizerTarget, () -> transfer.export(runId, path))))),
            files -> manifest(request, header.get(), files));
    List<String> deleted = commit.created() ? retention.apply(store, commit.manifest()) : List.of();
    LOG.info(
        "state checkpoint "
            + commit.manifest().name()
            + (commit.created() ? " saved" : " already existed")
            + ": run="
            + runId
            + " step="
            + commit.manifest().step()
            + " bytes="
            + commit.manifest().dataFile().sizeBytes()
            + (deleted.isEmpty() ? "" : " retention_deleted=" + deleted));
    return new Checkpoints.Saved(commit, deleted);
  }

  ImportStateResponse restore(RestoreStateRequest request) {
    String name = CheckpointNames.check(request.getCheckpoint(), "checkpoint");
    RunIds.check(request.getRunId());
    Manifest m = store.verified(name);
    if (!m.kind().equals(Manifest.STATE)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_CHECKPOINT_KIND_MISMATCH,
              "checkpoint '" + name + "' is an " + m.kind() + " checkpoint, not a state checkpoint")
          .with("checkpoint", name)
          .build();
    }
    Path file;
    try {
      file = store.readable(name, FILE); // no link, inside the store: opened with O_NOFOLLOW
    } catch (IOException e) {
      throw new RoadlessException(
          ErrorReason.ERROR_REASON_STORAGE_UNAVAILABLE, "cannot read checkpoint '" + name + "'");
    }
    ImportStateResponse r =
        Upstream.optimizer(optimizerTarget, () -> transfer.importState(file, request.getRunId()));
    LOG.info(
        "restored checkpoint "
            + name
            + " as run "
            + request.getRunId()
            + " at step "
            + r.getStatus().getStep()
            + (r.getCreated() ? "" : " (already there)"));
    return r;
  }

  private Manifest manifest(
      SaveStateCheckpointRequest request, StateHeader header, List<Manifest.FileEntry> files) {
    long step = header.getGroupsCount() == 0 ? 0 : header.getGroups(0).getStep();
    String name =
        request.getName().isEmpty()
            ? CheckpointNames.defaultName(request.getRunId(), step, "state")
            : request.getName();
    return new Manifest(
        1,
        name,
        Manifest.STATE,
        request.getRunId(),
        step,
        clock.instant().toString(),
        header.getSpec().getVariant().name(),
        ProtoJson.tree(header),
        null,
        null,
        null,
        null,
        files,
        null);
  }
}
