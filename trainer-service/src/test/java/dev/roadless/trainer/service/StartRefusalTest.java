package dev.roadless.trainer.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.common.error.Errors;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.trainer.v1.DatasetSpec;
import dev.roadless.proto.trainer.v1.GetStatusRequest;
import dev.roadless.proto.trainer.v1.ModelSpec;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Start with a model too large to hold is refused as INVALID_MODEL_SPEC naming the field, before
 * anything is allocated: never INTERNAL, the trainer stays as it was and the optimizer gets no run.
 */
class StartRefusalTest {
  private static StartRequest start(String architecture, int... inputShape) {
    ModelSpec.Builder model = ModelSpec.newBuilder().setArchitecture(architecture);
    for (int d : inputShape) {
      model.addInputShape(d);
    }
    return StartRequest.newBuilder()
        .setRunId("huge")
        .setReplica(0)
        .setReplicas(1)
        .setModel(model)
        .setDataset(DatasetSpec.getDefaultInstance())
        .setGlobalBatchSize(64)
        .setMaxSteps(1)
        .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
        .setStepMode(StepMode.STEP_MODE_SYNC)
        .build();
  }

  @Test
  void start_modelWithAbsurdParameterCount_invalidModelSpecNamingTheField() throws Exception {
    OptimizerServer optimizer =
        OptimizerServer.builder(Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()))
            .build()
            .start();
    ManagedChannel toOptimizer = loopback(optimizer.port());
    TrainerServer trainer =
        new TrainerServer(
                Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
                new Trainer(new OptimizerClient(toOptimizer, ClientOptions.defaults())),
                ServiceMetrics.newIsolated())
            .start();
    ManagedChannel toTrainer = loopback(trainer.port());
    try {
      var stub = TrainerServiceGrpc.newBlockingStub(toTrainer);
      var before = stub.getStatus(GetStatusRequest.getDefaultInstance());
      for (StartRequest huge :
          new StartRequest[] {
            start("fc1=Linear(784,2000000000) -> fc2=Linear(2000000000,10)", 784),
            start("fc1=Linear(2147483647,10)", Integer.MAX_VALUE),
            start(
                "conv=Conv2d(3,65536,kernel_size=3,padding=1) -> pool=AdaptiveAvgPool2d(1)"
                    + " -> flat=Flatten -> fc=Linear(65536,10)",
                3,
                4096,
                4096)
          }) {
        StatusRuntimeException e =
            assertThrows(StatusRuntimeException.class, () -> stub.start(huge));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.toString());
        var info = Errors.errorInfo(e);
        assertEquals("INVALID_MODEL_SPEC", info.getReason(), e.toString());
        Map<String, String> m = info.getMetadataMap();
        assertEquals(
            String.valueOf(dev.roadless.trainer.model.ModelSpec.MAX_ELEMENTS), m.get("limit"));
        assertEquals(
            huge.getModel().getInputShape(0) == Integer.MAX_VALUE
                ? "model.input_shape"
                : "model.architecture",
            m.get("field"),
            e.toString());
      }
      // Nothing changed: the trainer's status is as before, the optimizer has no run.
      assertEquals(before, stub.getStatus(GetStatusRequest.getDefaultInstance()));
      assertEquals(
          0,
          OptimizerServiceGrpc.newBlockingStub(toOptimizer)
              .listRuns(ListRunsRequest.getDefaultInstance())
              .getRunIdsCount());
    } finally {
      trainer.shutdown(1);
      toTrainer.shutdownNow();
      toOptimizer.shutdownNow();
      optimizer.shutdown(1);
    }
  }

  private static ManagedChannel loopback(int port) {
    return Grpc.newChannelBuilderForAddress("127.0.0.1", port, InsecureChannelCredentials.create())
        .build();
  }
}
