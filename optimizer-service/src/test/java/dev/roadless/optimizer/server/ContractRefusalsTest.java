package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.assertRefused;
import static dev.roadless.optimizer.server.RawStreams.chunk;
import static dev.roadless.optimizer.server.RawStreams.commit;
import static dev.roadless.optimizer.server.RawStreams.header;
import static dev.roadless.optimizer.server.RawStreams.send;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.error.Errors;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Refusals of the wire contract (issue 13): sizes that would overflow, over-size and over-inflating
 * messages, GetParameters' own fields and hyperparameters. Each asserts the status, the ErrorInfo
 * reason and its metadata, and that another run on the same server did not change.
 */
class ContractRefusalsTest {
  private static final String OTHER = "bystander";

  /** Runs {@code call} against a server holding a bystander run, which must not change. */
  private static StatusRuntimeException refusedLeavingOthers(
      Harness h, Code code, String reason, Executable call) throws Exception {
    String before = h.fingerprint(OTHER);
    int runs = h.blocking.listRuns(ListRunsRequest.getDefaultInstance()).getRunIdsCount();
    StatusRuntimeException e = assertRefused(code, reason, call);
    assertEquals(before, h.fingerprint(OTHER), "a refused call changed another run");
    assertEquals(runs, h.blocking.listRuns(ListRunsRequest.getDefaultInstance()).getRunIdsCount());
    return e;
  }

  private static Map<String, String> metadata(StatusRuntimeException e) {
    return Errors.errorInfo(e).getMetadataMap();
  }

  private static RunSpec withShape(long... shape) {
    RunSpec spec = Harness.spec(1, StepMode.STEP_MODE_SYNC, 0);
    TensorDescriptor.Builder w = spec.getTensors(0).toBuilder().clearShape();
    for (long d : shape) {
      w.addShape(d);
    }
    return spec.toBuilder().setTensors(0, w).build();
  }

  @Test
  void push_chunkOffsetNearLongMax_sizeMismatch() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      List<PushGradientsRequest> m =
          List.of(
              header(OTHER, 0, 0, DataType.DATA_TYPE_FLOAT32),
              chunk("w", Long.MAX_VALUE, 1f, 2f),
              commit(17));
      StatusRuntimeException e =
          refusedLeavingOthers(h, Code.INVALID_ARGUMENT, "SIZE_MISMATCH", () -> send(h.async, m));
      assertEquals("w", metadata(e).get("tensor"));
    }
  }

  @Test
  void createRun_tensorTooLargeToHold_invalidRunSpecNamingTensors() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      for (RunSpec spec :
          List.of(
              withShape((1L << 31) - 9),
              withShape(1L << 16, 1L << 16),
              withShape(Long.MAX_VALUE),
              withShape(3_000_000_000L, 3_000_000_000L))) {
        StatusRuntimeException e =
            refusedLeavingOthers(
                h,
                Code.INVALID_ARGUMENT,
                "INVALID_RUN_SPEC",
                () -> h.client.createRun("huge", spec));
        assertEquals("tensors", metadata(e).get("field"));
        assertEquals("w", metadata(e).get("tensor"));
      }
    }
  }

  @Test
  void createRun_runTooLargeToHold_invalidRunSpec() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      RunSpec.Builder many = Harness.spec(1, StepMode.STEP_MODE_SYNC, 0).toBuilder();
      var group = many.getParameterGroups(0).toBuilder();
      // 1,100 tensors of 2^30 elements each: every one fine, together over 2^40.
      for (int i = 0; i < 1100; i++) {
        many.addTensors(
            TensorDescriptor.newBuilder().setName("t" + i).addShape(1 << 14).addShape(1 << 16));
        group.addTensorNames("t" + i);
      }
      RunSpec spec = many.setParameterGroups(0, group).build();
      StatusRuntimeException e =
          refusedLeavingOthers(
              h, Code.INVALID_ARGUMENT, "INVALID_RUN_SPEC", () -> h.client.createRun("huge", spec));
      assertEquals("tensors", metadata(e).get("field"));
      assertEquals(String.valueOf(1L << 40), metadata(e).get("limit"));
    }
  }

  @Test
  void push_messageOverLimit_resourceExhaustedWithMessageTooLarge() throws Exception {
    try (Harness h = new Harness(null, 64 << 10, true)) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      // 80 KB of data: over the 64 KiB limit, within what the transport buffers.
      List<PushGradientsRequest> m =
          List.of(
              header(OTHER, 0, 0, DataType.DATA_TYPE_FLOAT32),
              chunk("w", 0, new float[20_000]),
              commit(17));
      StatusRuntimeException e =
          refusedLeavingOthers(
              h, Code.RESOURCE_EXHAUSTED, "MESSAGE_TOO_LARGE", () -> send(h.async, m));
      assertEquals(String.valueOf(64 << 10), metadata(e).get("limit"));
    }
  }

  @Test
  void push_gzipChunkInflatingTo64MiB_resourceExhaustedWithMessageTooLarge() throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      // 64 MiB of zeros compress to well under the limit; inflated they are 16 times over it.
      List<PushGradientsRequest> m =
          List.of(
              header(OTHER, 0, 0, DataType.DATA_TYPE_FLOAT32),
              chunk("w", 0, new float[16 << 20]),
              commit(17));
      StatusRuntimeException e =
          refusedLeavingOthers(
              h,
              Code.RESOURCE_EXHAUSTED,
              "MESSAGE_TOO_LARGE",
              () -> send(h.async.withCompression("gzip"), m));
      assertEquals(String.valueOf(4 << 20), metadata(e).get("limit"));
      // A compressed push within the limit still works.
      send(h.async.withCompression("gzip"), RawStreams.push(OTHER, 0, 0, Harness.random(3)));
    }
  }

  private static GetParametersRequest.Builder params(String run) {
    return GetParametersRequest.newBuilder().setRunId(run).setSequence(Sequence.SEQUENCE_EVAL);
  }

  @Test
  void getParameters_tensorNamedTwice_invalidArgumentNamingTensorNames() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      List<String> names = new ArrayList<>(Collections.nCopies(1000, "w"));
      StatusRuntimeException e =
          refusedLeavingOthers(
              h,
              Code.INVALID_ARGUMENT,
              "INVALID_ARGUMENT",
              () ->
                  h.blocking.getParameters(params(OTHER).addAllTensorNames(names).build()).next());
      assertEquals("tensor_names", metadata(e).get("field"));
      assertEquals("w", metadata(e).get("tensor"));
    }
  }

  @Test
  void getParameters_withoutSequence_invalidArgumentNamingSequence() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      StatusRuntimeException e =
          refusedLeavingOthers(
              h,
              Code.INVALID_ARGUMENT,
              "INVALID_ARGUMENT",
              () ->
                  h.blocking
                      .getParameters(GetParametersRequest.newBuilder().setRunId(OTHER).build())
                      .next());
      assertEquals("sequence", metadata(e).get("field"));
    }
  }

  @Test
  void getParameters_maxChunkBytesTooLarge_invalidArgumentWithLimit() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      StatusRuntimeException e =
          refusedLeavingOthers(
              h,
              Code.INVALID_ARGUMENT,
              "INVALID_ARGUMENT",
              () ->
                  h.blocking
                      .getParameters(params(OTHER).setMaxChunkBytes(Integer.MAX_VALUE).build())
                      .next());
      assertEquals("max_chunk_bytes", metadata(e).get("field"));
      assertEquals(String.valueOf(ChunkWriter.MAX_CHUNK_BYTES), metadata(e).get("limit"));
    }
  }

  @Test
  void getParameters_60kTensorNames_answeredInLinearTime() throws Exception {
    try (Harness h = new Harness()) {
      RunSpec.Builder spec = RunSpec.newBuilder();
      var group = dev.roadless.proto.optimizer.v1.ParameterGroup.newBuilder().setName("all");
      List<String> names = new ArrayList<>();
      for (int i = 0; i < 60_000; i++) {
        names.add("t" + i);
        spec.addTensors(TensorDescriptor.newBuilder().setName("t" + i).addShape(1));
        group.addTensorNames("t" + i);
      }
      h.client.createRun(
          OTHER,
          spec.addParameterGroups(group)
              .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_SGD)
              .setReplicas(1)
              .setMode(StepMode.STEP_MODE_SYNC)
              .build());
      Collections.reverse(names);
      // Unknown names at the end: the server must look up all 60k before refusing.
      names.add("nope");
      long t0 = System.nanoTime();
      assertRefused(
          Code.INVALID_ARGUMENT,
          "UNKNOWN_TENSOR",
          () -> h.blocking.getParameters(params(OTHER).addAllTensorNames(names).build()).next());
      long ms = (System.nanoTime() - t0) / 1_000_000;
      // Quadratic lookup took ~6 s here; linear takes milliseconds. A generous bound, not a bench.
      assertTrue(ms < 2_000, "60k names took " + ms + " ms");
    }
  }

  private static RunSpec withHyperparameters(OptimizerVariant variant, Hyperparameters hp) {
    RunSpec spec = Harness.spec(1, StepMode.STEP_MODE_SYNC, 0);
    return spec.toBuilder()
        .setVariant(variant)
        .setParameterGroups(0, spec.getParameterGroups(0).toBuilder().setHyperparameters(hp))
        .build();
  }

  private static void assertHyperparameterRefused(
      Harness h, OptimizerVariant variant, Hyperparameters hp, String field, String text)
      throws Exception {
    StatusRuntimeException e =
        refusedLeavingOthers(
            h,
            Code.INVALID_ARGUMENT,
            "INVALID_HYPERPARAMETER",
            () -> h.client.createRun("hp", withHyperparameters(variant, hp)));
    assertEquals(field, metadata(e).get("field"), e.getStatus().toString());
    String message = e.getStatus().getDescription();
    assertTrue(message.contains(text), message + " lacks " + text);
  }

  @Test
  void createRun_badHyperparameter_namesTheProtoField() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      var sgd = OptimizerVariant.OPTIMIZER_VARIANT_SGD;
      var adamw = OptimizerVariant.OPTIMIZER_VARIANT_ADAMW;
      assertHyperparameterRefused(
          h, sgd, Hyperparameters.newBuilder().setLr(-1).build(), "lr", "lr must be");
      assertHyperparameterRefused(
          h,
          adamw,
          Hyperparameters.newBuilder().setInnerMomentum(1.5).build(),
          "inner_momentum",
          "inner_momentum must be in [0, 1)");
      assertHyperparameterRefused(
          h,
          sgd,
          Hyperparameters.newBuilder().setWarmupSteps(-1).build(),
          "warmup_steps",
          "warmup_steps must be >= 0");
      assertHyperparameterRefused(
          h,
          adamw,
          Hyperparameters.newBuilder().setWeightLrPower(-1).build(),
          "weight_lr_power",
          "weight_lr_power");
    }
  }

  @Test
  void createRun_warmupOnWrapperSgd_messageAboutTheWrapper() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      StatusRuntimeException e =
          refusedLeavingOthers(
              h,
              Code.INVALID_ARGUMENT,
              "INVALID_HYPERPARAMETER",
              () ->
                  h.client.createRun(
                      "hp",
                      withHyperparameters(
                          OptimizerVariant.OPTIMIZER_VARIANT_WRAPPER_SGD,
                          Hyperparameters.newBuilder().setWarmupSteps(5).build())));
      assertEquals("warmup_steps", metadata(e).get("field"));
      String message = e.getStatus().getDescription();
      assertTrue(message.contains("WRAPPER_SGD follows its base optimizer"), message);
      assertTrue(!message.contains("RAdam") && !message.contains("RADAM"), message);
    }
  }

  @Test
  void createRun_unusedFieldAtNonDefault_refusedForEveryVariant() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      assertHyperparameterRefused(
          h,
          OptimizerVariant.OPTIMIZER_VARIANT_SGD,
          Hyperparameters.newBuilder().setEps(-1).build(),
          "eps",
          "SGD does not use it");
      assertHyperparameterRefused(
          h,
          OptimizerVariant.OPTIMIZER_VARIANT_SGD,
          Hyperparameters.newBuilder().setInnerMomentum(0.5).build(),
          "inner_momentum",
          "SGD does not use it");
      assertHyperparameterRefused(
          h,
          OptimizerVariant.OPTIMIZER_VARIANT_ADAMW,
          Hyperparameters.newBuilder().setSilentSgdPhase(false).build(),
          "silent_sgd_phase",
          "ADAMW does not use it");
      assertHyperparameterRefused(
          h,
          OptimizerVariant.OPTIMIZER_VARIANT_WRAPPER_ADAM,
          Hyperparameters.newBuilder().setBaseDampening(0.5).build(),
          "base_dampening",
          "WRAPPER_ADAM does not use it");
      // At its default an unused field is no setting at all: accepted.
      h.client.createRun(
          "hp",
          withHyperparameters(
              OptimizerVariant.OPTIMIZER_VARIANT_SGD,
              Hyperparameters.newBuilder().setEps(1e-8).setBeta2(0.999).build()));
    }
  }

  @Test
  void updateHyperparameters_unusedField_refusedNamingIt_runUnchanged() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun(OTHER, Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      h.newRun("target", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      String before = h.fingerprint("target");
      StatusRuntimeException e =
          refusedLeavingOthers(
              h,
              Code.INVALID_ARGUMENT,
              "INVALID_HYPERPARAMETER",
              () ->
                  h.client.updateHyperparameters(
                      "target", "all", Hyperparameters.newBuilder().setBaseMomentum(0.5).build()));
      assertEquals("base_momentum", metadata(e).get("field"));
      assertEquals(before, h.fingerprint("target"));
    }
  }
}
