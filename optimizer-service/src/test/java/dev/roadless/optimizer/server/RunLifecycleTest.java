package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static dev.roadless.optimizer.server.Harness.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import io.grpc.Status.Code;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Creating, initializing, reading, exporting, importing, snapshotting and deleting runs. */
class RunLifecycleTest {
  private static final RunSpec SPEC = Harness.spec(2, StepMode.STEP_MODE_SYNC, 0);

  @Test
  void createRun_identicalSpecTwice_returnsExistingRun() throws Exception {
    try (Harness h = new Harness()) {
      assertTrue(h.client.createRun("a", SPEC).getCreated());
      var again = h.client.createRun("a", SPEC);
      assertFalse(again.getCreated());
      // Defaults are filled in: beta2 does not apply to SGD, warmup does.
      assertTrue(again.getStatus().getSpec().getParameterGroups(0).getHyperparameters().hasR());
    }
  }

  @Test
  void createRun_differentSpec_alreadyExists() throws Exception {
    try (Harness h = new Harness()) {
      h.client.createRun("a", SPEC);
      RunSpec other = SPEC.toBuilder().setReplicas(3).build();
      assertRefused(Code.ALREADY_EXISTS, "RUN_SPEC_CONFLICT", () -> h.client.createRun("a", other));
      assertEquals(2, h.client.status("a").getSpec().getReplicas());
    }
  }

  @Test
  void createRun_invalidInputs_refusedAndNothingCreated() throws Exception {
    try (Harness h = new Harness()) {
      assertRefused(
          Code.INVALID_ARGUMENT, "INVALID_RUN_ID", () -> h.client.createRun("Bad/Id", SPEC));
      RunSpec badLr =
          SPEC.toBuilder()
              .setParameterGroups(
                  0,
                  SPEC.getParameterGroups(0).toBuilder()
                      .setHyperparameters(Hyperparameters.newBuilder().setLr(-1)))
              .build();
      assertRefused(
          Code.INVALID_ARGUMENT, "INVALID_HYPERPARAMETER", () -> h.client.createRun("a", badLr));
      RunSpec ungrouped =
          SPEC.toBuilder()
              .setParameterGroups(0, ParameterGroup.newBuilder().setName("g").addTensorNames("w"))
              .build();
      assertRefused(
          Code.INVALID_ARGUMENT, "INVALID_RUN_SPEC", () -> h.client.createRun("a", ungrouped));
      RunSpec bf16 =
          SPEC.toBuilder()
              .setTensors(0, SPEC.getTensors(0).toBuilder().setDtype(DataType.DATA_TYPE_BFLOAT16))
              .build();
      assertRefused(Code.INVALID_ARGUMENT, "DTYPE_MISMATCH", () -> h.client.createRun("a", bf16));
      assertEquals(0, h.blocking.listRuns(ListRunsRequest.getDefaultInstance()).getRunIdsCount());
    }
  }

  @Test
  void uploadInitialValues_repeatOrConflict() throws Exception {
    try (Harness h = new Harness()) {
      h.client.createRun("a", SPEC);
      assertRefused(
          Code.FAILED_PRECONDITION,
          "INITIAL_VALUES_MISSING",
          () -> h.client.parameters("a", Sequence.SEQUENCE_TRAIN, 0));
      float[][] bad = Harness.random(7);
      bad[0][2] = Float.POSITIVE_INFINITY;
      assertRefused(
          Code.INVALID_ARGUMENT,
          "NON_FINITE_VALUE",
          () -> h.client.uploadInitialValues("a", NAMES, bad));
      assertFalse(h.client.status("a").getInitialized());
      assertTrue(h.client.uploadInitialValues("a", NAMES, Harness.random(7)));
      assertFalse(h.client.uploadInitialValues("a", NAMES, Harness.random(7)));
      String before = h.fingerprint("a");
      assertRefused(
          Code.ALREADY_EXISTS,
          "INITIAL_VALUES_CONFLICT",
          () -> h.client.uploadInitialValues("a", NAMES, Harness.random(8)));
      assertEquals(before, h.fingerprint("a"));
    }
  }

  @Test
  void getParameters_unknownTensorOrRun_refused() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("a", SPEC);
      assertRefused(
          Code.INVALID_ARGUMENT,
          "UNKNOWN_TENSOR",
          () ->
              h.blocking
                  .getParameters(
                      GetParametersRequest.newBuilder()
                          .setRunId("a")
                          .setSequence(Sequence.SEQUENCE_EVAL)
                          .addTensorNames("nope")
                          .build())
                  .hasNext());
      assertRefused(
          Code.NOT_FOUND,
          "RUN_NOT_FOUND",
          () -> h.client.parameters("zz", Sequence.SEQUENCE_EVAL, 0));
      var only =
          h.blocking.getParameters(
              GetParametersRequest.newBuilder()
                  .setRunId("a")
                  .setSequence(Sequence.SEQUENCE_EVAL)
                  .addTensorNames("b")
                  .build());
      assertEquals(
          List.of("b"),
          only.next().getHeader().getTensorsList().stream().map(t -> t.getName()).toList());
    }
  }

  @Test
  void upload_messageOverServerLimit_resourceExhausted() throws Exception {
    try (Harness h = new Harness(null, 64 << 10, true)) {
      RunSpec big =
          SPEC.toBuilder()
              .setTensors(0, SPEC.getTensors(0).toBuilder().clearShape().addShape(100_000))
              .build();
      h.client.createRun("big", big);
      // The client cuts 1 MiB chunks; the server takes messages of at most 64 KiB.
      float[][] values = {new float[100_000], new float[5]};
      var e =
          org.junit.jupiter.api.Assertions.assertThrows(
              io.grpc.StatusRuntimeException.class,
              () -> h.client.uploadInitialValues("big", List.of("w", "b"), values));
      assertEquals(Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
      assertFalse(h.client.status("big").getInitialized());
    }
  }

  @Test
  void exportImport_continuesBitIdentically() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("src", SPEC);
      for (int k = 0; k < 3; k++) {
        for (int r = 0; r < 2; r++) {
          h.client.push(
              "src", r, k, NAMES, TrainingProtocolTest.grad(k, r), DataType.DATA_TYPE_FLOAT32);
        }
      }
      List<ExportStateResponse> exported = new ArrayList<>();
      h.blocking
          .exportState(ExportStateRequest.newBuilder().setRunId("src").build())
          .forEachRemaining(exported::add);
      List<ImportStateRequest> imports = new ArrayList<>();
      for (ExportStateResponse m : exported) {
        switch (m.getItemCase()) {
          case HEADER ->
              imports.add(
                  ImportStateRequest.newBuilder()
                      .setHeader(m.getHeader().toBuilder().setRunId("copy"))
                      .build());
          case CHUNK -> imports.add(ImportStateRequest.newBuilder().setChunk(m.getChunk()).build());
          case END -> imports.add(ImportStateRequest.newBuilder().setCommit(m.getEnd()).build());
          default -> throw new AssertionError(m);
        }
      }
      assertTrue(importState(h, imports).getCreated());
      // Truncated and inconsistent imports are refused and create nothing.
      assertRefused(
          Code.INVALID_ARGUMENT,
          "STREAM_TRUNCATED",
          () -> importState(h, rename(imports.subList(0, imports.size() - 1), "cut")));
      assertRefused(
          Code.INVALID_ARGUMENT,
          "INVALID_STATE",
          () ->
              importState(
                  h,
                  List.of(
                      ImportStateRequest.newBuilder()
                          .setHeader(StateHeader.newBuilder().setRunId("v0").setSpec(SPEC))
                          .build(),
                      ImportStateRequest.newBuilder()
                          .setCommit(StreamCommit.getDefaultInstance())
                          .build())));
      assertEquals(
          List.of("copy", "src"),
          h.blocking.listRuns(ListRunsRequest.getDefaultInstance()).getRunIdsList());
      for (int k = 3; k < 6; k++) {
        for (int r = 0; r < 2; r++) {
          for (String run : List.of("src", "copy")) {
            h.client.push(
                run, r, k, NAMES, TrainingProtocolTest.grad(k, r), DataType.DATA_TYPE_FLOAT32);
          }
        }
      }
      assertEquals(h.fingerprint("src").replace("src", "copy"), h.fingerprint("copy"));
      assertTrue(
          h.blocking
              .deleteRun(DeleteRunRequest.newBuilder().setRunId("copy").build())
              .getDeleted());
      assertFalse(
          h.blocking
              .deleteRun(DeleteRunRequest.newBuilder().setRunId("copy").build())
              .getDeleted());
    }
  }

  @Test
  void snapshots_restoredByANewServer(@TempDir Path dir) throws Exception {
    String before;
    try (Harness h = new Harness(dir, 4 << 20)) {
      h.newRun("snap", SPEC);
      for (int r = 0; r < 2; r++) {
        h.client.push(
            "snap", r, 0, NAMES, TrainingProtocolTest.grad(0, r), DataType.DATA_TYPE_FLOAT32);
      }
      before = h.fingerprint("snap");
    } // graceful shutdown writes the final snapshot
    try (Harness h = new Harness(dir, 4 << 20)) {
      assertEquals(before, h.fingerprint("snap"));
      var health =
          HealthGrpc.newBlockingStub(h.channel)
              .check(
                  HealthCheckRequest.newBuilder()
                      .setService("roadless.optimizer.v1.OptimizerService")
                      .build());
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.getStatus());
      // Identical re-upload after a restart is still recognised.
      assertFalse(h.client.uploadInitialValues("snap", NAMES, Harness.random(7)));
    }
  }

  private static List<ImportStateRequest> rename(List<ImportStateRequest> in, String id) {
    List<ImportStateRequest> out = new ArrayList<>(in);
    out.set(
        0,
        ImportStateRequest.newBuilder()
            .setHeader(in.get(0).getHeader().toBuilder().setRunId(id))
            .build());
    return out;
  }

  static ImportStateResponse importState(Harness h, List<ImportStateRequest> messages)
      throws Exception {
    CompletableFuture<ImportStateResponse> result = new CompletableFuture<>();
    StreamObserver<ImportStateRequest> requests =
        h.async.importState(
            new StreamObserver<>() {
              private ImportStateResponse last;

              @Override
              public void onNext(ImportStateResponse v) {
                last = v;
              }

              @Override
              public void onError(Throwable t) {
                result.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                result.complete(last);
              }
            });
    Iterator<ImportStateRequest> it = messages.iterator();
    it.forEachRemaining(requests::onNext);
    requests.onCompleted();
    try {
      return result.get(20, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw (Exception) e.getCause();
    }
  }
}
