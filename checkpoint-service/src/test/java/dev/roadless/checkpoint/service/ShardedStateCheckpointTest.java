package dev.roadless.checkpoint.service;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.roadless.checkpoint.remote.OptimizerStateClient;
import dev.roadless.checkpoint.remote.RunReader;
import dev.roadless.checkpoint.remote.ShardedStateTransfer;
import dev.roadless.checkpoint.remote.StateTransfer;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Manifest;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.checkpoint.testing.TrainedCluster;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.RestoreStateRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.Sequence;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * State checkpoints of a run sharded over 3 optimizer servers: saved as one state file, restored
 * onto one server, and a one-server checkpoint restored onto 3 shards; training on from either ends
 * at exactly the x of the run that never stopped.
 */
class ShardedStateCheckpointTest {
  private final OptimizerHarness harness = new OptimizerHarness();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final ExecutorService executor = Executors.newCachedThreadPool();

  @AfterEach
  void stop() throws Exception {
    channels.forEach(ManagedChannel::shutdownNow);
    executor.shutdownNow();
    harness.close();
  }

  @Test
  void threeShardsToOneAndOneToThree_trainOn_bitIdenticalToTheRunThatNeverStopped(@TempDir Path dir)
      throws Exception {
    CheckpointStore store = new CheckpointStore(dir);
    // The run that never stops, on one server; its checkpoint at step 10 on the way.
    List<Integer> oneServer = start(1);
    OptimizerClient one = harness.client(oneServer.get(0));
    harness.newRun(one, "run");
    OptimizerHarness.train(one, "run", 0, 10);
    String oneAt10 =
        checkpoints(store, oneServer)
            .saveState(save("run", "one-at-10"))
            .commit()
            .manifest()
            .name();
    Manifest oneEval =
        checkpoints(store, oneServer).saveEval(eval("run", "one-eval-at-10")).commit().manifest();
    OptimizerHarness.train(one, "run", 10, 20);
    float[][] expected = one.parameters("run", Sequence.SEQUENCE_EVAL, 0).values();

    // The same run over 3 shards, checkpointed at step 10 and restored onto one server.
    List<Integer> three = start(3);
    ShardedClient sharded = new ShardedClient(clients(three), OptimizerHarness.spec());
    sharded.createRun("run");
    sharded.uploadInitialValues("run", values(1));
    trainSharded(sharded, "run", 0, 10);
    Checkpoints.Saved saved = checkpoints(store, three).saveState(save("run", "three-at-10"));
    assertEquals(10, saved.commit().manifest().step());
    // x gathered from the 3 shards: the same safetensors file, byte for byte, as one server's.
    Manifest threeEval =
        checkpoints(store, three).saveEval(eval("run", "three-eval-at-10")).commit().manifest();
    assertEquals(10, threeEval.step());
    assertEquals(oneEval.dataFile().sha256(), threeEval.dataFile().sha256());
    List<Integer> target = start(1);
    OptimizerClient restored = harness.client(target.get(0));
    checkpoints(store, target).restore(restore(saved, "back"));
    OptimizerHarness.train(restored, "back", 10, 20);
    assertBitEqual(expected, restored.parameters("back", Sequence.SEQUENCE_EVAL, 0).values());

    // The one-server checkpoint restored onto 3 fresh shards.
    List<Integer> fresh = start(3);
    checkpoints(store, fresh)
        .restore(RestoreStateRequest.newBuilder().setCheckpoint(oneAt10).setRunId("out").build());
    ShardedClient out = new ShardedClient(clients(fresh), OptimizerHarness.spec());
    assertEquals(10, out.step("out"));
    trainSharded(out, "out", 10, 20);
    assertBitEqual(expected, out.parameters("out", Sequence.SEQUENCE_EVAL, 0).values());
  }

  private List<Integer> start(int n) throws Exception {
    List<Integer> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(harness.startOptimizer());
    }
    return out;
  }

  private List<OptimizerClient> clients(List<Integer> optimizers) {
    return optimizers.stream().map(harness::client).toList();
  }

  /** Checkpoints over these optimizers: one server, or the shards of a sharded run. */
  private Checkpoints checkpoints(CheckpointStore store, List<Integer> optimizers) {
    List<OptimizerStateClient> transfers = new ArrayList<>();
    List<String> targets = new ArrayList<>();
    for (int o : optimizers) {
      String target = "127.0.0.1:" + harness.port(o);
      ManagedChannel ch =
          Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
      channels.add(ch);
      transfers.add(new OptimizerStateClient(ch, TrainedCluster.fastFailing()));
      targets.add(target);
    }
    StateTransfer transfer =
        optimizers.size() == 1
            ? transfers.get(0)
            : new ShardedStateTransfer(
                transfers, targets, store.dir().resolve(".staging").resolve("shards"), executor);
    return new Checkpoints(
        optimizers.size() == 1
            ? RunReader.of(harness.client(optimizers.get(0)))
            : RunReader.sharded(clients(optimizers)),
        targets.get(0),
        transfer,
        List.of(),
        executor,
        store,
        new Retention(0, Retention.BestMetric.NONE),
        Clock.systemUTC());
  }

  /** Both replicas' seeded gradients of steps [from, to), each shard its part. */
  private static void trainSharded(ShardedClient c, String run, long from, long to) {
    for (long k = from; k < to; k++) {
      for (int r = 0; r < 2; r++) {
        float[][][] parts = c.plan().split(values(1000 * k + r + 2));
        for (int s = 0; s < parts.length; s++) {
          c.shard(s)
              .push(run, r, k, c.plan().shard(s).names(), parts[s], DataType.DATA_TYPE_FLOAT32);
        }
      }
    }
  }

  private static float[][] values(long seed) {
    return OptimizerHarness.seeded(seed);
  }

  private static SaveCheckpointRequest eval(String run, String name) {
    return SaveCheckpointRequest.newBuilder()
        .setRunId(run)
        .setName(name)
        .setBatchNorm(BatchNormSettings.newBuilder().setMode(BatchNormMode.BATCH_NORM_MODE_NONE))
        .build();
  }

  private static SaveStateCheckpointRequest save(String run, String name) {
    return SaveStateCheckpointRequest.newBuilder().setRunId(run).setName(name).build();
  }

  private static RestoreStateRequest restore(Checkpoints.Saved saved, String run) {
    return RestoreStateRequest.newBuilder()
        .setCheckpoint(saved.commit().manifest().name())
        .setRunId(run)
        .build();
  }

  private static void assertBitEqual(float[][] expected, float[][] actual) {
    for (int t = 0; t < expected.length; t++) {
      int[] e = new int[expected[t].length];
      int[] a = new int[actual[t].length];
      for (int i = 0; i < e.length; i++) {
        e[i] = Float.floatToRawIntBits(expected[t][i]);
        a[i] = Float.floatToRawIntBits(actual[t][i]);
      }
      assertArrayEquals(e, a, OptimizerHarness.NAMES.get(t));
    }
  }
}
