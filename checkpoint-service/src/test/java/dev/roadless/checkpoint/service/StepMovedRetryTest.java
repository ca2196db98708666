package dev.roadless.checkpoint.service;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.checkpoint.format.Safetensors;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointResponse;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.Sequence;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The run moves while an eval checkpoint is taken. An interceptor on the real optimizer server
 * applies one real step (both replicas push) right before it answers a GetRunStatus, which the
 * checkpoint service calls after reading x: so x and the status disagree exactly when the test
 * says, and the retry path runs deterministically.
 */
class StepMovedRetryTest {
  private static final String RUN = "moving";

  /** Applies one SYNC step before each of the next {@code moves} GetRunStatus calls. */
  private static final class StepBeforeStatus implements ServerInterceptor {
    final AtomicInteger moves = new AtomicInteger();
    final AtomicLong nextStep = new AtomicLong();
    volatile OptimizerClient client;

    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
      if (call.getMethodDescriptor()
              .getFullMethodName()
              .equals(OptimizerServiceGrpc.getGetRunStatusMethod().getFullMethodName())
          && moves.getAndUpdate(m -> Math.max(0, m - 1)) > 0) {
        long k = nextStep.getAndIncrement();
        OptimizerHarness.train(client, RUN, k, k + 1);
      }
      return next.startCall(call, headers);
    }
  }

  @Test
  void stepMovesOnce_saveRetriesAtTheNewStep_andWritesXOfThatStep(@TempDir Path dir)
      throws Exception {
    StepBeforeStatus mover = new StepBeforeStatus();
    try (OptimizerHarness h = new OptimizerHarness()) {
      int o = h.startOptimizer(mover);
      OptimizerClient client = h.client(o);
      mover.client = client;
      h.newRun(client, RUN);
      OptimizerHarness.train(client, RUN, 0, 4);
      mover.nextStep.set(4);
      CheckpointServiceGrpc.CheckpointServiceBlockingStub stub =
          h.checkpointServer(o, dir, new Retention(0, Retention.BestMetric.NONE));

      mover.moves.set(1);
      SaveCheckpointResponse r = stub.saveCheckpoint(save());

      assertEquals(0, mover.moves.get(), "the interceptor moved the run once");
      assertEquals(5, r.getCheckpoint().getStep(), "saved at the step the run moved to");
      var x = client.parameters(RUN, Sequence.SEQUENCE_EVAL, 0);
      assertEquals(5, x.step());
      Safetensors.Contents file =
          Safetensors.read(dir.resolve(r.getCheckpoint().getName()).resolve("model.safetensors"));
      for (String name : x.names()) {
        assertArrayEquals(x.get(name), file.tensors().get(name).floats(), name);
      }
      assertEquals("5", file.metadata().get("roadless.step"));
    }
  }

  @Test
  void stepKeepsMoving_refusedWithStepMoved_nothingWritten(@TempDir Path dir) throws Exception {
    StepBeforeStatus mover = new StepBeforeStatus();
    try (OptimizerHarness h = new OptimizerHarness()) {
      int o = h.startOptimizer(mover);
      OptimizerClient client = h.client(o);
      mover.client = client;
      h.newRun(client, RUN);
      OptimizerHarness.train(client, RUN, 0, 4);
      mover.nextStep.set(4);
      CheckpointServiceGrpc.CheckpointServiceBlockingStub stub =
          h.checkpointServer(o, dir, new Retention(0, Retention.BestMetric.NONE));

      mover.moves.set(EvalCheckpointer.MAX_ATTEMPTS);
      StatusRuntimeException e =
          assertThrows(StatusRuntimeException.class, () -> stub.saveCheckpoint(save()));

      assertEquals(Status.Code.ABORTED, e.getStatus().getCode(), e.getStatus().toString());
      assertEquals("CHECKPOINT_STEP_MOVED", OptimizerClient.reason(e));
      assertTrue(e.getStatus().getDescription().contains("kept moving"), e.getStatus().toString());
      assertEquals(
          0,
          stub.listCheckpoints(ListCheckpointsRequest.getDefaultInstance()).getCheckpointsCount(),
          "nothing written");
      assertEquals(4 + EvalCheckpointer.MAX_ATTEMPTS, client.status(RUN).getStep());
    }
  }

  private static SaveCheckpointRequest save() {
    return SaveCheckpointRequest.newBuilder()
        .setRunId(RUN)
        .setBatchNorm(BatchNormSettings.newBuilder().setMode(BatchNormMode.BATCH_NORM_MODE_NONE))
        .build();
  }
}
