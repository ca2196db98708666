package dev.roadless.checkpoint.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc.CheckpointServiceBlockingStub;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsRequest;
import dev.roadless.proto.checkpoint.v1.RestoreStateRequest;
import dev.roadless.proto.checkpoint.v1.RestoreStateResponse;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointResponse;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.StateHeader;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** State checkpoints: save, restore under a new id (on the same or another server), continue. */
class StateCheckpointTest {
  @TempDir Path dir;

  @Test
  void restoreState_thenTrainBoth_continuesBitIdentically() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      int a = h.startOptimizer();
      int b = h.startOptimizer();
      OptimizerClient onA = h.client(a);
      OptimizerClient onB = h.client(b);
      h.newRun(onA, "src");
      OptimizerHarness.train(onA, "src", 0, 7);
      CheckpointServiceBlockingStub saver =
          h.checkpointServer(a, dir, new Retention(0, Retention.BestMetric.NONE));

      SaveStateCheckpointResponse saved =
          saver.saveStateCheckpoint(
              SaveStateCheckpointRequest.newBuilder().setRunId("src").build());
      assertTrue(saved.getCreated());
      assertEquals("src-step7-state", saved.getCheckpoint().getName());
      assertEquals(7, saved.getCheckpoint().getStep());
      StateHeader header = StateCodec.header(dir.resolve("src-step7-state/optimizer-state.binpb"));
      assertEquals("src", header.getRunId());
      // Saving again at the same step finds the identical checkpoint.
      assertFalse(
          saver
              .saveStateCheckpoint(SaveStateCheckpointRequest.newBuilder().setRunId("src").build())
              .getCreated());

      // Restore on the same server under a new id, and on another optimizer server.
      RestoreStateResponse copy = saver.restoreState(restore("src-step7-state", "copy"));
      assertTrue(copy.getCreated());
      assertEquals(7, copy.getStatus().getStep());
      CheckpointServiceBlockingStub onOther =
          h.checkpointServer(b, dir, new Retention(0, Retention.BestMetric.NONE));
      assertTrue(onOther.restoreState(restore("src-step7-state", "moved")).getCreated());
      assertFalse(onOther.restoreState(restore("src-step7-state", "moved")).getCreated());

      String at7 = OptimizerHarness.fingerprint(onA, "src");
      assertEquals(at7, OptimizerHarness.fingerprint(onA, "copy"));
      assertEquals(at7, OptimizerHarness.fingerprint(onB, "moved"));
      OptimizerHarness.train(onA, "src", 7, 12);
      OptimizerHarness.train(onA, "copy", 7, 12);
      OptimizerHarness.train(onB, "moved", 7, 12);
      String at12 = OptimizerHarness.fingerprint(onA, "src");
      assertNotEquals(at7, at12);
      assertEquals(at12, OptimizerHarness.fingerprint(onA, "copy"));
      assertEquals(at12, OptimizerHarness.fingerprint(onB, "moved"));
    }
  }

  @Test
  void restoreState_evalCheckpointOrUnknownName_refused() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      int a = h.startOptimizer();
      h.newRun(h.client(a), "src");
      CheckpointServiceBlockingStub stub =
          h.checkpointServer(a, dir, new Retention(0, Retention.BestMetric.NONE));
      stub.saveCheckpoint(
          SaveCheckpointRequest.newBuilder()
              .setRunId("src")
              .setName("weights")
              .setBatchNorm(
                  BatchNormSettings.newBuilder().setMode(BatchNormMode.BATCH_NORM_MODE_NONE))
              .build());
      assertRefused(
          Status.Code.FAILED_PRECONDITION,
          "CHECKPOINT_KIND_MISMATCH",
          () -> stub.restoreState(restore("weights", "w2")));
      assertRefused(
          Status.Code.NOT_FOUND,
          "CHECKPOINT_NOT_FOUND",
          () -> stub.restoreState(restore("nope", "w2")));
      assertRefused(
          Status.Code.NOT_FOUND,
          "RUN_NOT_FOUND",
          () ->
              stub.saveStateCheckpoint(
                  SaveStateCheckpointRequest.newBuilder().setRunId("missing").build()));
      // EMA needs trainers, and this service has none.
      assertRefused(
          Status.Code.FAILED_PRECONDITION,
          "TRAINERS_NOT_CONFIGURED",
          () -> stub.saveCheckpoint(SaveCheckpointRequest.newBuilder().setRunId("src").build()));
    }
  }

  /** Answers every ImportState as the optimizer does for different state under an existing id. */
  private static final io.grpc.ServerInterceptor STATE_CONFLICT =
      new io.grpc.ServerInterceptor() {
        @Override
        public <Q, R> io.grpc.ServerCall.Listener<Q> interceptCall(
            io.grpc.ServerCall<Q, R> call,
            io.grpc.Metadata headers,
            io.grpc.ServerCallHandler<Q, R> next) {
          if (!call.getMethodDescriptor().getBareMethodName().equals("ImportState")) {
            return next.startCall(call, headers);
          }
          StatusRuntimeException e =
              Errors.toStatus(
                  RoadlessException.of(
                          ErrorReason.ERROR_REASON_STATE_CONFLICT,
                          "run 'copy' exists with different state")
                      .with("run_id", "copy")
                      .build());
          call.close(e.getStatus(), e.getTrailers());
          return new io.grpc.ServerCall.Listener<>() {};
        }
      };

  @Test
  void restoreState_optimizerAnswersStateConflict_passedThroughWithErrorInfo() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      int a = h.startOptimizer(STATE_CONFLICT);
      OptimizerClient onA = h.client(a);
      h.newRun(onA, "src");
      OptimizerHarness.train(onA, "src", 0, 3);
      CheckpointServiceBlockingStub stub =
          h.checkpointServer(a, dir, new Retention(0, Retention.BestMetric.NONE));
      stub.saveStateCheckpoint(SaveStateCheckpointRequest.newBuilder().setRunId("src").build());
      String before = OptimizerHarness.fingerprint(onA, "src");
      StatusRuntimeException e =
          assertRefused(
              Status.Code.ALREADY_EXISTS,
              "STATE_CONFLICT",
              () -> stub.restoreState(restore("src-step3-state", "copy")));
      assertEquals("copy", Errors.errorInfo(e).getMetadataMap().get("run_id"));
      assertEquals(before, OptimizerHarness.fingerprint(onA, "src"));
      assertEquals(
          1,
          stub.listCheckpoints(ListCheckpointsRequest.getDefaultInstance()).getCheckpointsCount());
    }
  }

  // Against a real optimizer: ImportState of other state into an existing run is STATE_CONFLICT.
  @Test
  void restoreState_differentStateIntoExistingRun_stateConflictAndRunUnchanged() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      int a = h.startOptimizer();
      OptimizerClient onA = h.client(a);
      h.newRun(onA, "src");
      OptimizerHarness.train(onA, "src", 0, 3);
      h.newRun(onA, "other");
      CheckpointServiceBlockingStub stub =
          h.checkpointServer(a, dir, new Retention(0, Retention.BestMetric.NONE));
      stub.saveStateCheckpoint(SaveStateCheckpointRequest.newBuilder().setRunId("src").build());
      assertTrue(stub.restoreState(restore("src-step3-state", "copy")).getCreated());
      OptimizerHarness.train(onA, "copy", 3, 5); // same spec, different state now
      String copy = OptimizerHarness.fingerprint(onA, "copy");
      String other = OptimizerHarness.fingerprint(onA, "other");
      StatusRuntimeException e =
          assertRefused(
              Status.Code.ALREADY_EXISTS,
              "STATE_CONFLICT",
              () -> stub.restoreState(restore("src-step3-state", "copy")));
      assertEquals("copy", Errors.errorInfo(e).getMetadataMap().get("run_id"));
      assertEquals(copy, OptimizerHarness.fingerprint(onA, "copy"));
      assertEquals(other, OptimizerHarness.fingerprint(onA, "other"));
    }
  }

  static RestoreStateRequest restore(String checkpoint, String runId) {
    return RestoreStateRequest.newBuilder().setCheckpoint(checkpoint).setRunId(runId).build();
  }

  static StatusRuntimeException assertRefused(
      Status.Code code, String reason, org.junit.jupiter.api.function.Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
    assertEquals(reason, OptimizerClient.reason(e), e.getStatus().toString());
    return e;
  }
}
