package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static dev.roadless.optimizer.server.Harness.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.roadless.optimizer.store.SnapshotStore;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.RollbackRunRequest;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.RunState;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StateSlot;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Status;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One run's failure never touches another: a step that makes a run's state non-finite moves that
 * run to FAILED (and only that run), bad imported scalars and step numbers are refused, a restarted
 * server sets aside a snapshot it cannot restore and serves every other run, and a different push
 * for an accepted (replica, step) is refused. Every case checks the status, the ErrorInfo reason,
 * and that a neighbouring run is exactly as it was.
 */
class FailureContainmentTest {
  /** SGD-SF with lr 1 and no warmup: two pushes of 3e38 overflow z to -inf in float32. */
  private static final RunSpec FRAGILE = fragile(Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));

  private static RunSpec fragile(RunSpec spec) {
    RunSpec.Builder b = spec.toBuilder();
    b.getParameterGroupsBuilder(0).getHyperparametersBuilder().setLr(1.0).setWarmupSteps(0);
    return b.build();
  }

  private static float[][] filled(float v) {
    float[][] g = new float[Harness.SIZES.length][];
    for (int t = 0; t < g.length; t++) {
      g[t] = new float[Harness.SIZES[t]];
      Arrays.fill(g[t], v);
    }
    return g;
  }

  private static void push(Harness h, String run, int replica, long step, float[][] g) {
    h.client.push(run, replica, step, NAMES, g, DataType.DATA_TYPE_FLOAT32);
  }

  /** Creates {@code bad} with ones and fails it at step 1; returns the neighbour's fingerprint. */
  private static String failRun(Harness h) throws InterruptedException {
    return failRun(h, () -> {});
  }

  /** As above, running {@code between} after the finite step and before the failing one. */
  private static String failRun(Harness h, Runnable between) throws InterruptedException {
    h.newRun("good", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
    push(h, "good", 0, 0, Harness.random(1));
    h.client.createRun("bad", FRAGILE);
    h.client.uploadInitialValues("bad", NAMES, filled(1f));
    push(h, "bad", 0, 0, filled(3e38f)); // z = 1 - 3e38: finite
    between.run();
    String good = h.fingerprint("good");
    var e =
        assertRefused(
            Status.Code.FAILED_PRECONDITION,
            "RUN_FAILED",
            () -> push(h, "bad", 0, 1, filled(3e38f)));
    assertTrue(e.getStatus().getDescription().contains("non-finite"), e.getStatus().toString());
    return good;
  }

  @Test
  void nonFiniteStep_failsThatRunOnly() throws Exception {
    try (Harness h = new Harness()) {
      String good = failRun(h);
      var status = h.client.status("bad");
      assertEquals(RunState.RUN_STATE_FAILED, status.getState());
      assertEquals(1, status.getFailure().getStep());
      assertEquals(StateSlot.STATE_SLOT_Z, status.getFailure().getSlot());
      assertEquals("w", status.getFailure().getTensor());
      assertEquals(-1, status.getFailure().getSnapshotStep()); // no store: nothing to go back to
      // Nothing non-finite is ever served to train on, and the run takes no more pushes.
      for (Sequence s : List.of(Sequence.SEQUENCE_TRAIN, Sequence.SEQUENCE_EVAL)) {
        assertRefused(
            Status.Code.FAILED_PRECONDITION, "RUN_FAILED", () -> h.read("bad", s).values());
      }
      assertRefused(
          Status.Code.FAILED_PRECONDITION, "RUN_FAILED", () -> push(h, "bad", 0, 2, filled(0f)));
      assertRefused(
          Status.Code.FAILED_PRECONDITION,
          "RUN_FAILED",
          () ->
              h.blocking
                  .exportState(ExportStateRequest.newBuilder().setRunId("bad").build())
                  .forEachRemaining(m -> {}));
      // The neighbour is untouched and keeps training.
      assertEquals(good, h.fingerprint("good"));
      push(h, "good", 0, 1, Harness.random(2));
      assertEquals(2, h.client.status("good").getStep());
      // A FAILED run can be deleted, and its id used again.
      assertTrue(
          h.blocking
              .deleteRun(
                  dev.roadless.proto.optimizer.v1.DeleteRunRequest.newBuilder()
                      .setRunId("bad")
                      .build())
              .getDeleted());
      h.newRun("bad", FRAGILE);
      assertEquals(RunState.RUN_STATE_ACTIVE, h.client.status("bad").getState());
    }
  }

  @Test
  void failedRun_exportsAndRollsBackToItsLastFiniteSnapshot(@TempDir Path dir) throws Exception {
    try (Harness h = new Harness(dir, 4 << 20, false, null, b -> b.snapshotEvery(1, 0))) {
      // The snapshot of step 1 is on disk before step 1 is pushed.
      failRun(h, () -> await(() -> h.client.status("bad").getSnapshotStep() == 1));
      var failure = h.client.status("bad").getFailure();
      assertEquals(1, failure.getSnapshotStep(), failure.toString());
      // ExportState hands out the last finite snapshot, which imports as a healthy run.
      List<ExportStateResponse> exported = new ArrayList<>();
      h.blocking
          .exportState(ExportStateRequest.newBuilder().setRunId("bad").build())
          .forEachRemaining(exported::add);
      assertEquals(1, exported.get(0).getHeader().getGroups(0).getStep());
      var rolled = h.blocking.rollbackRun(RollbackRunRequest.newBuilder().setRunId("bad").build());
      assertTrue(rolled.getRolledBack());
      assertEquals(RunState.RUN_STATE_ACTIVE, rolled.getStatus().getState());
      assertEquals(1, rolled.getStatus().getStep());
      // Rolling back a healthy run changes nothing.
      assertFalse(
          h.blocking
              .rollbackRun(RollbackRunRequest.newBuilder().setRunId("bad").build())
              .getRolledBack());
      push(h, "bad", 0, 1, filled(0.5f));
      assertEquals(2, h.client.status("bad").getStep());
    }
  }

  @Test
  void restart_setsAsideAPoisonedSnapshotAndServesTheOthers(@TempDir Path dir) throws Exception {
    String good;
    List<ExportStateResponse> state = new ArrayList<>();
    try (Harness h = new Harness(dir, 4 << 20)) {
      h.newRun("good", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      push(h, "good", 0, 0, Harness.random(1));
      good = h.fingerprint("good");
      h.blocking
          .exportState(ExportStateRequest.newBuilder().setRunId("good").build())
          .forEachRemaining(state::add);
    }
    SnapshotStore store = new SnapshotStore(dir);
    // A checksummed, well-formed snapshot whose z holds NaN, and one whose k is 2^63 - 1.
    store.write("poison", renamed(state, "poison", StateFilesEdits.nanInZ()).iterator());
    store.write("wrapped", renamed(state, "wrapped", StateFilesEdits.k(Long.MAX_VALUE)).iterator());
    try (Harness h = new Harness(dir, 4 << 20)) {
      assertEquals(
          List.of("good"),
          h.blocking
              .listRuns(dev.roadless.proto.optimizer.v1.ListRunsRequest.getDefaultInstance())
              .getRunIdsList());
      assertEquals(good, h.fingerprint("good"));
      push(h, "good", 0, 1, Harness.random(2));
      assertTrue(Files.exists(dir.resolve("poison.snapshot.corrupt")));
      assertTrue(Files.exists(dir.resolve("wrapped.snapshot.corrupt")));
      assertFalse(Files.exists(dir.resolve("poison.snapshot")));
    }
  }

  @Test
  void importState_rangeChecksStepsAndScalars() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("good", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      push(h, "good", 0, 0, Harness.random(1));
      List<ExportStateResponse> state = export(h, "good");
      String good = h.fingerprint("good");
      for (var edit :
          List.of(
              StateFilesEdits.k(Long.MAX_VALUE),
              StateFilesEdits.k(1L << 53),
              StateFilesEdits.k(-1),
              StateFilesEdits.nanInZ(),
              StateFilesEdits.lrMax(Double.NaN))) {
        assertRefused(
            Status.Code.INVALID_ARGUMENT,
            "INVALID_STATE",
            () -> importState(h, renamed(state, "imported", edit)));
        assertFalse(
            h.blocking
                .listRuns(dev.roadless.proto.optimizer.v1.ListRunsRequest.getDefaultInstance())
                .getRunIdsList()
                .contains("imported"));
      }
      assertEquals(good, h.fingerprint("good"));
    }
  }

  @Test
  void importState_intoAnExistingRunWithOtherState_isAlreadyExists() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("good", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      List<ExportStateResponse> atZero = export(h, "good");
      push(h, "good", 0, 0, Harness.random(1));
      String good = h.fingerprint("good");
      // Identical state: idempotent.
      assertFalse(importState(h, renamed(export(h, "good"), "good", m -> m)).getCreated());
      // Other state under the same id: refused, nothing changes.
      assertRefused(
          Status.Code.ALREADY_EXISTS,
          "STATE_CONFLICT",
          () -> importState(h, renamed(atZero, "good", m -> m)));
      assertEquals(good, h.fingerprint("good"));
    }
  }

  @Test
  void pushes_stepBelowZeroAndConflictingResendsAreRefused() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("sync", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      h.newRun("other", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      String other = h.fingerprint("other");
      assertRefused(
          Status.Code.INVALID_ARGUMENT,
          "STEP_OUT_OF_RANGE",
          () -> push(h, "sync", 0, -1, Harness.random(1)));
      float[][] g0 = Harness.random(1);
      push(h, "sync", 0, 0, g0);
      // Pending: the identical re-send is a duplicate, another gradient a conflict.
      assertTrue(h.client.push("sync", 0, 0, NAMES, g0, DataType.DATA_TYPE_FLOAT32).getDuplicate());
      assertRefused(
          Status.Code.ALREADY_EXISTS,
          "PUSH_CONFLICT",
          () -> push(h, "sync", 0, 0, Harness.random(9)));
      push(h, "sync", 1, 0, Harness.random(2));
      assertEquals(1, h.client.status("sync").getStep());
      String sync = h.fingerprint("sync");
      // Applied: the same again.
      assertTrue(h.client.push("sync", 0, 0, NAMES, g0, DataType.DATA_TYPE_FLOAT32).getDuplicate());
      assertRefused(
          Status.Code.ALREADY_EXISTS,
          "PUSH_CONFLICT",
          () -> push(h, "sync", 0, 0, Harness.random(9)));
      assertEquals(sync, h.fingerprint("sync"));
      assertEquals(other, h.fingerprint("other"));
      // Chunking does not matter: the same values cut differently are the same push.
      float[][] g1 = Harness.random(3);
      push(h, "sync", 1, 1, g1);
      List<dev.roadless.proto.optimizer.v1.PushGradientsRequest> split = new ArrayList<>();
      split.add(RawStreams.header("sync", 1, 1, DataType.DATA_TYPE_FLOAT32));
      split.add(RawStreams.chunk("w", 6, Arrays.copyOfRange(g1[0], 6, 12)));
      split.add(RawStreams.chunk("w", 0, Arrays.copyOfRange(g1[0], 0, 6)));
      split.add(RawStreams.chunk("b", 0, g1[1]));
      split.add(RawStreams.commit(17));
      assertTrue(RawStreams.send(h.async, split).getDuplicate());
    }
  }

  @Test
  void updateHyperparameters_expectedStepZeroIsHonoured() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("run", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      var request =
          dev.roadless.proto.optimizer.v1.UpdateHyperparametersRequest.newBuilder()
              .setRunId("run")
              .setGroup("all")
              .setHyperparameters(
                  dev.roadless.proto.optimizer.v1.Hyperparameters.newBuilder().setLr(0.2))
              .setExpectedStep(0)
              .build();
      h.blocking.updateHyperparameters(request);
      push(h, "run", 0, 0, Harness.random(1));
      // The retry of the same change, now at step 1, is refused rather than applied twice.
      assertRefused(
          Status.Code.ABORTED, "STEP_MISMATCH", () -> h.blocking.updateHyperparameters(request));
    }
  }

  private static void await(java.util.function.BooleanSupplier done) {
    long end = System.nanoTime() + 20_000_000_000L;
    while (!done.getAsBoolean() && System.nanoTime() < end) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
    assertTrue(done.getAsBoolean(), "condition not reached in 20 s");
  }

  private static List<ExportStateResponse> export(Harness h, String run) {
    List<ExportStateResponse> out = new ArrayList<>();
    h.blocking
        .exportState(ExportStateRequest.newBuilder().setRunId(run).build())
        .forEachRemaining(out::add);
    return out;
  }

  private static List<ExportStateResponse> renamed(
      List<ExportStateResponse> state, String id, UnaryOperator<ExportStateResponse> edit) {
    List<ExportStateResponse> out = new ArrayList<>();
    for (ExportStateResponse m : state) {
      ExportStateResponse e = edit.apply(m);
      if (e.hasHeader()) {
        e = e.toBuilder().setHeader(e.getHeader().toBuilder().setRunId(id)).build();
      }
      out.add(e);
    }
    return out;
  }

  private static dev.roadless.proto.optimizer.v1.ImportStateResponse importState(
      Harness h, List<ExportStateResponse> state) throws Exception {
    List<ImportStateRequest> messages = new ArrayList<>();
    for (ExportStateResponse m : state) {
      ImportStateRequest.Builder b = ImportStateRequest.newBuilder();
      switch (m.getItemCase()) {
        case HEADER -> b.setHeader(m.getHeader());
        case CHUNK -> b.setChunk(m.getChunk());
        default -> b.setCommit(m.getEnd());
      }
      messages.add(b.build());
    }
    return RunLifecycleTest.importState(h, messages);
  }

  /** Edits of one message of a state stream. */
  static final class StateFilesEdits {
    private StateFilesEdits() {}

    static UnaryOperator<ExportStateResponse> k(long k) {
      return m -> {
        if (!m.hasHeader()) {
          return m;
        }
        var header = m.getHeader().toBuilder();
        for (int g = 0; g < header.getGroupsCount(); g++) {
          GroupStatus.Builder gs = header.getGroupsBuilder(g);
          gs.setStep(k);
        }
        return m.toBuilder().setHeader(header).build();
      };
    }

    static UnaryOperator<ExportStateResponse> lrMax(double v) {
      return m -> {
        if (!m.hasHeader()) {
          return m;
        }
        var header = m.getHeader().toBuilder();
        header.getGroupsBuilder(0).setLrMax(v);
        return m.toBuilder().setHeader(header).build();
      };
    }

    static UnaryOperator<ExportStateResponse> nanInZ() {
      return m -> {
        if (!m.hasChunk() || m.getChunk().getSlot() != StateSlot.STATE_SLOT_Z) {
          return m;
        }
        byte[] data = m.getChunk().getChunk().getData().toByteArray();
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, Float.NaN);
        var chunk = m.getChunk().toBuilder();
        chunk.getChunkBuilder().setData(ByteString.copyFrom(data));
        return m.toBuilder().setChunk(chunk).build();
      };
    }
  }
}
