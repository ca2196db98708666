package dev.roadless.trainer.service;

import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.optimizer.shard.ShardedSession;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.RunStatus;
import dev.roadless.proto.optimizer.v1.Sequence;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Supplier;

/**
 * The optimizer as the training loop sees it: one server ({@link OptimizerClient}, {@link
 * ReplicaSession}) or S shards ({@link ShardedClient}, {@link ShardedSession}, parameters assembled
 * whole and read at one step). The sharded form learns the run's plan from the spec given to {@link
 * #createRun}.
 */
abstract class OptimizerRun {
  /**
   * How many steps of this replica's pushes a sharded session keeps for a shard that comes back.
   */
  static final int REPLAY_STEPS = 256;

  abstract void createRun(String runId, RunSpec spec);

  /** The whole run's status (sharded: the slowest shard's step, every group). */
  abstract RunStatus status(String runId);

  /** The whole run's initial values, tensors in spec order. */
  abstract void uploadInitialValues(String runId, List<String> names, float[][] values);

  /** A sequence of the whole run at one step, waiting for {@code minStep}. */
  abstract Parameters parameters(String runId, Sequence sequence, long minStep);

  abstract Session session(String runId, int replica);

  /** One replica's loop: y at the run's step, and push g_k for y_{k+1}. */
  interface Session extends AutoCloseable {
    Parameters current();

    Parameters next(Parameters at, float[][] gradient);

    @Override
    void close();

    /** The session behind three operations: a replica session's, or a sharded one's. */
    static Session of(
        Supplier<Parameters> current,
        BiFunction<Parameters, float[][], Parameters> next,
        Runnable close) {
      return new Session() {
        @Override
        public Parameters current() {
          return current.get();
        }

        @Override
        public Parameters next(Parameters at, float[][] gradient) {
          return next.apply(at, gradient);
        }

        @Override
        public void close() {
          close.run();
        }
      };
    }
  }

  /** One server, or S shards in shard order when there are at least two. */
  static OptimizerRun of(List<OptimizerClient> shards) {
    return shards.size() == 1 ? new Single(shards.get(0)) : new Sharded(shards);
  }

  private static final class Single extends OptimizerRun {
    private final OptimizerClient client;

    Single(OptimizerClient client) {
      this.client = client;
    }

    @Override
    void createRun(String runId, RunSpec spec) {
      client.createRun(runId, spec);
    }

    @Override
    RunStatus status(String runId) {
      return client.status(runId);
    }

    @Override
    void uploadInitialValues(String runId, List<String> names, float[][] values) {
      client.uploadInitialValues(runId, names, values);
    }

    @Override
    Parameters parameters(String runId, Sequence sequence, long minStep) {
      return client.parameters(runId, sequence, minStep);
    }

    @Override
    Session session(String runId, int replica) {
      ReplicaSession s = new ReplicaSession(client, runId, replica, DataType.DATA_TYPE_FLOAT32);
      return Session.of(s::current, s::next, s::close);
    }
  }

  private static final class Sharded extends OptimizerRun {
    private final List<OptimizerClient> shards;
    private volatile ShardedClient client;

    Sharded(List<OptimizerClient> shards) {
      this.shards = List.copyOf(shards);
    }

    @Override
    void createRun(String runId, RunSpec spec) {
      ShardedClient c = new ShardedClient(shards, spec);
      c.createRun(runId);
      client = c;
    }

    /** The client of the run created last, or of an existing run, its plan read from the shards. */
    private ShardedClient client(String runId) {
      ShardedClient c = client;
      if (c == null) {
        c = ShardedClient.recover(shards, runId);
        client = c;
      }
      return c;
    }

    @Override
    RunStatus status(String runId) {
      return client(runId).status(runId);
    }

    @Override
    void uploadInitialValues(String runId, List<String> names, float[][] values) {
      ShardedClient c = client(runId);
      if (!names.equals(c.plan().names())) {
        throw new IllegalArgumentException(
            "tensors " + names + " are not the run's spec order " + c.plan().names());
      }
      c.uploadInitialValues(runId, values);
    }

    @Override
    Parameters parameters(String runId, Sequence sequence, long minStep) {
      return client(runId).parameters(runId, sequence, minStep);
    }

    @Override
    Session session(String runId, int replica) {
      ShardedSession s =
          client(runId).session(runId, replica, DataType.DATA_TYPE_FLOAT32, REPLAY_STEPS);
      return Session.of(s::current, s::next, s::close);
    }
  }
}
