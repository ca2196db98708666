package dev.roadless.trainer.service;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;
import dev.roadless.proto.trainer.v1.BatchNormStatisticsMode;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsResponse;
import dev.roadless.proto.trainer.v1.EvaluateRequest;
import dev.roadless.proto.trainer.v1.EvaluateResponse;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import dev.roadless.trainer.data.DatasetRoots;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Two trainer replicas against S = 2 optimizer shards on loopback end bit for bit where they end
 * against one server: x (assembled whole from the shards), the BatchNorm statistics rebuilt at x
 * (read through the sharded reader) and the hold-out evaluation.
 */
class ShardedTrainerTest {
  private static final int STEPS = 40;

  private record Result(float[][] x, List<BatchNormLayerStatistics> stats, EvaluateResponse eval) {}

  @Test
  void twoReplicasOverTwoShards_bitIdenticalToOneServer() throws Exception {
    Result one = train(1);
    Result two = train(2);
    assertEquals(one.x().length, two.x().length);
    for (int t = 0; t < one.x().length; t++) {
      assertArrayEquals(bits(one.x()[t]), bits(two.x()[t]), "tensor " + t);
    }
    assertEquals(one.stats(), two.stats());
    assertEquals(one.eval(), two.eval());
    assertEquals(STEPS, two.eval().getStep());
  }

  private static Result train(int shards) throws Exception {
    String run = "sharded-" + shards;
    List<OptimizerServer> optimizers = new ArrayList<>();
    List<ManagedChannel> channels = new ArrayList<>();
    List<TrainerServer> trainers = new ArrayList<>();
    try {
      List<Integer> ports = new ArrayList<>();
      for (int s = 0; s < shards; s++) {
        OptimizerServer o =
            OptimizerServer.builder(
                    Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()))
                .build()
                .start();
        optimizers.add(o);
        ports.add(o.port());
      }
      List<TrainerServiceGrpc.TrainerServiceBlockingStub> stubs = new ArrayList<>();
      for (int r = 0; r < 2; r++) {
        List<OptimizerClient> clients = new ArrayList<>();
        for (int port : ports) {
          ManagedChannel c = loopback(port);
          channels.add(c);
          clients.add(new OptimizerClient(c, ClientOptions.defaults()));
        }
        TrainerServer server =
            new TrainerServer(
                    Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
                    new Trainer(clients, DatasetRoots.none()),
                    ServiceMetrics.newIsolated())
                .start();
        trainers.add(server);
        ManagedChannel toTrainer = loopback(server.port());
        channels.add(toTrainer);
        stubs.add(TrainerServiceGrpc.newBlockingStub(toTrainer));
      }
      for (int r = 0; r < 2; r++) {
        StartRequest start = start(run, r);
        stubs.get(r).start(start);
      }
      List<OptimizerClient> observers = new ArrayList<>();
      for (int port : ports) {
        ManagedChannel c = loopback(port);
        channels.add(c);
        observers.add(new OptimizerClient(c, ClientOptions.defaults()));
      }
      ShardedClient observer = ShardedClient.recover(observers, run);
      Parameters x = observer.parameters(run, Sequence.SEQUENCE_EVAL, STEPS);
      assertEquals(STEPS, x.step());
      List<ComputeBatchNormStatisticsResponse> parts = new ArrayList<>();
      for (var stub : stubs) {
        parts.add(
            stub.withDeadlineAfter(2, TimeUnit.MINUTES)
                .computeBatchNormStatistics(
                    ComputeBatchNormStatisticsRequest.newBuilder()
                        .setRunId(run)
                        .setSequence(Sequence.SEQUENCE_EVAL)
                        .setMinStep(STEPS)
                        .setMode(BatchNormStatisticsMode.BATCH_NORM_STATISTICS_MODE_PRECISE)
                        .setBatches(5)
                        .setDataSeed(7)
                        .build()));
      }
      List<BatchNormLayerStatistics> stats = TrainerEndToEndTest.merge(parts);
      EvaluateResponse eval =
          stubs
              .get(0)
              .evaluate(
                  EvaluateRequest.newBuilder()
                      .setRunId(run)
                      .setSequence(Sequence.SEQUENCE_EVAL)
                      .setMinStep(STEPS)
                      .addAllStatistics(stats)
                      .build());
      return new Result(x.values(), stats, eval);
    } finally {
      for (TrainerServer s : trainers) {
        s.shutdown(1);
      }
      for (ManagedChannel c : channels) {
        c.shutdownNow();
      }
      for (OptimizerServer o : optimizers) {
        o.shutdown(1);
      }
    }
  }

  private static StartRequest start(String run, int replica) {
    return TrainerEndToEndTest.start(replica).toBuilder().setRunId(run).setMaxSteps(STEPS).build();
  }

  private static int[] bits(float[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Float.floatToRawIntBits(v[i]);
    }
    return out;
  }

  private static ManagedChannel loopback(int port) {
    return Grpc.newChannelBuilderForAddress("127.0.0.1", port, InsecureChannelCredentials.create())
        .build();
  }
}
