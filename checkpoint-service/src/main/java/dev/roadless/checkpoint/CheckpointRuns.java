package dev.roadless.checkpoint;

import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Manifest;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.common.security.Authorization;
import dev.roadless.proto.checkpoint.v1.DeleteCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.GetCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.RestoreStateRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Which run a checkpoint call is about, for authorization: calls that name a checkpoint are about
 * the run it was taken from; RestoreState also about the run it creates. A checkpoint that does not
 * exist (or a name that is not valid) names no run, so only an admin of every run gets past
 * authorization to hear NOT_FOUND: a caller learns nothing about other teams' checkpoints.
 */
final class CheckpointRuns {
  private static final String SERVICE = "roadless.checkpoint.v1.CheckpointService/";

  private CheckpointRuns() {}

  static Authorization.Builder resolvers(Authorization.Builder auth, CheckpointStore store) {
    return auth.resolver(
            SERVICE + "GetCheckpoint", r -> runOf(store, ((GetCheckpointRequest) r).getName()))
        .resolver(
            SERVICE + "DownloadCheckpoint",
            r -> runOf(store, ((DownloadCheckpointRequest) r).getName()))
        .resolver(
            SERVICE + "DeleteCheckpoint",
            r -> runOf(store, ((DeleteCheckpointRequest) r).getName()))
        .resolver(
            SERVICE + "RestoreState",
            r -> {
              RestoreStateRequest q = (RestoreStateRequest) r;
              List<String> source = runOf(store, q.getCheckpoint());
              if (source.isEmpty()) {
                return List.of();
              }
              List<String> runs = new ArrayList<>(source);
              if (!q.getRunId().isEmpty()) {
                runs.add(q.getRunId());
              }
              return runs;
            });
  }

  private static List<String> runOf(CheckpointStore store, String name) {
    try {
      Optional<Manifest> m = store.find(name);
      return m.map(x -> List.of(x.runId())).orElse(List.of());
    } catch (RoadlessException e) {
      return List.of();
    }
  }
}
