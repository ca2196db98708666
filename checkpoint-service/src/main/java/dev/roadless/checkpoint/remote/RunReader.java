package dev.roadless.checkpoint.remote;

import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.proto.optimizer.v1.RunStatus;
import dev.roadless.proto.optimizer.v1.Sequence;
import java.util.List;

/**
 * What an eval checkpoint reads from the optimizer: a run's status and one sequence of it at one
 * step, from one server or, for a run sharded over several, put together whole from every shard
 * ({@link ShardedClient}: the slowest shard's step, the whole spec, every tensor at one step).
 */
public interface RunReader {
  /** A sequence of the whole run at its current step, or at {@code minStep} once reached. */
  Parameters parameters(String runId, Sequence sequence, long minStep);

  /** The whole run's status. */
  RunStatus status(String runId);

  /** One optimizer server. */
  static RunReader of(OptimizerClient optimizer) {
    return new RunReader() {
      @Override
      public Parameters parameters(String runId, Sequence sequence, long minStep) {
        return optimizer.parameters(runId, sequence, minStep);
      }

      @Override
      public RunStatus status(String runId) {
        return optimizer.status(runId);
      }
    };
  }

  /** The shards of sharded runs, in shard order; each run's plan is recovered from its shards. */
  static RunReader sharded(List<OptimizerClient> shards) {
    return new RunReader() {
      @Override
      public Parameters parameters(String runId, Sequence sequence, long minStep) {
        return ShardedClient.recover(shards, runId).parameters(runId, sequence, minStep);
      }

      @Override
      public RunStatus status(String runId) {
        return ShardedClient.recover(shards, runId).status(runId);
      }
    };
  }
}
