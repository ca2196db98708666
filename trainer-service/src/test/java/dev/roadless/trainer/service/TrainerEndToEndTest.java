package dev.roadless.trainer.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.bn.BatchNormProtos;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;
import dev.roadless.proto.trainer.v1.BatchNormStatisticsMode;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsResponse;
import dev.roadless.proto.trainer.v1.DatasetSpec;
import dev.roadless.proto.trainer.v1.EvaluateRequest;
import dev.roadless.proto.trainer.v1.EvaluateResponse;
import dev.roadless.proto.trainer.v1.GetStatusRequest;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import dev.roadless.proto.trainer.v1.TrainerState;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Real servers on loopback: one optimizer, two trainer replicas. They train the MLP on the bundled
 * MNIST digits with AdamW-SF; BatchNorm statistics are then rebuilt at x on both replicas, merged
 * exactly, and x is evaluated on the hold-out set.
 */
class TrainerEndToEndTest {
  private static final String RUN = "mnist-mlp";
  private static final int STEPS = 400;

  @Test
  void twoReplicas_trainMlpOnMnist_holdoutAccuracyAtXAtLeast94Percent() throws Exception {
    OptimizerServer optimizer =
        OptimizerServer.builder(Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()))
            .build()
            .start();
    List<ManagedChannel> channels = new ArrayList<>();
    List<TrainerServer> trainers = new ArrayList<>();
    List<TrainerServiceGrpc.TrainerServiceBlockingStub> stubs = new ArrayList<>();
    try {
      for (int r = 0; r < 2; r++) {
        ManagedChannel toOptimizer = loopback(optimizer.port());
        channels.add(toOptimizer);
        Trainer trainer = new Trainer(new OptimizerClient(toOptimizer, ClientOptions.defaults()));
        TrainerServer server =
            new TrainerServer(
                    Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
                    trainer,
                    ServiceMetrics.newIsolated())
                .start();
        trainers.add(server);
        ManagedChannel toTrainer = loopback(server.port());
        channels.add(toTrainer);
        stubs.add(TrainerServiceGrpc.newBlockingStub(toTrainer));
      }
      for (int r = 0; r < 2; r++) {
        stubs.get(r).start(start(r));
      }
      // The optimizer reaching the last step is the event to wait for.
      OptimizerClient observer = new OptimizerClient(channels.get(0), ClientOptions.defaults());
      assertEquals(STEPS, observer.parameters(RUN, Sequence.SEQUENCE_EVAL, STEPS).step());

      List<ComputeBatchNormStatisticsResponse> parts = new ArrayList<>();
      for (var stub : stubs) {
        parts.add(
            stub.withDeadlineAfter(2, TimeUnit.MINUTES)
                .computeBatchNormStatistics(
                    ComputeBatchNormStatisticsRequest.newBuilder()
                        .setRunId(RUN)
                        .setSequence(Sequence.SEQUENCE_EVAL)
                        .setMode(BatchNormStatisticsMode.BATCH_NORM_STATISTICS_MODE_PRECISE)
                        .setBatches(25)
                        .setDataSeed(7)
                        .build()));
      }
      EvaluateResponse atX =
          stubs
              .get(0)
              .evaluate(
                  EvaluateRequest.newBuilder()
                      .setRunId(RUN)
                      .setSequence(Sequence.SEQUENCE_EVAL)
                      .addAllStatistics(merge(parts))
                      .build());
      System.out.printf(
          "e2e: step %d, hold-out at x with merged precise BN: loss %.4f accuracy %.4f (%d examples)%n",
          atX.getStep(), atX.getLoss(), atX.getAccuracy(), atX.getExamples());
      assertEquals(STEPS, atX.getStep());
      assertEquals(2000, atX.getExamples());
      assertTrue(atX.getAccuracy() >= 0.94, "hold-out accuracy " + atX.getAccuracy());
      for (var stub : stubs) {
        assertEquals(
            TrainerState.TRAINER_STATE_STOPPED,
            stub.getStatus(GetStatusRequest.getDefaultInstance()).getStatus().getState());
      }
    } finally {
      for (TrainerServer s : trainers) {
        s.shutdown(1);
      }
      for (ManagedChannel c : channels) {
        c.shutdownNow();
      }
      optimizer.shutdown(1);
    }
  }

  static StartRequest start(int replica) {
    return StartRequest.newBuilder()
        .setRunId(RUN)
        .setReplica(replica)
        .setReplicas(2)
        .setModel(TrainerConfig.MODELS.get("mlp"))
        .setDataset(DatasetSpec.getDefaultInstance())
        .setGlobalBatchSize(64)
        .setDataSeed(1)
        .setMaxSteps(STEPS)
        .setProgressEverySteps(100)
        .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
        .setHyperparameters(Hyperparameters.newBuilder().setLr(0.005).setWarmupSteps(20))
        .setStepMode(StepMode.STEP_MODE_SYNC)
        .build();
  }

  /** Chan et al.'s exact merge, layer by layer, of the replicas' answers. */
  static List<BatchNormLayerStatistics> merge(List<ComputeBatchNormStatisticsResponse> parts) {
    Map<String, BatchNormStatistics> merged = new LinkedHashMap<>();
    for (ComputeBatchNormStatisticsResponse part : parts) {
      for (BatchNormLayerStatistics l : part.getLayersList()) {
        merged.merge(l.getLayer(), BatchNormProtos.fromProto(l), BatchNormStatistics::merge);
      }
    }
    List<BatchNormLayerStatistics> out = new ArrayList<>();
    merged.forEach((layer, s) -> out.add(BatchNormProtos.toProto(layer, s, 0)));
    return out;
  }

  private static ManagedChannel loopback(int port) {
    return Grpc.newChannelBuilderForAddress("127.0.0.1", port, InsecureChannelCredentials.create())
        .build();
  }
}
