package dev.roadless.checkpoint.remote;

import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.StateHeader;
import java.nio.file.Path;

/**
 * Moves a run's full optimizer state between the optimizer and a state file in the one state form:
 * one server ({@link OptimizerStateClient}) or the shards of a sharded run ({@link
 * ShardedStateTransfer}). The file is the same either way, so a state checkpoint restores onto any
 * number of shards.
 */
public interface StateTransfer {
  /** Writes the run's whole state, all from one step, into {@code file}; returns its header. */
  StateHeader export(String runId, Path file);

  /** Creates run {@code runId} from the state file. */
  ImportStateResponse importState(Path file, String runId);
}
