package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static dev.roadless.optimizer.server.Harness.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.client.Bfloat16;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.PushOutcome;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Status.Code;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** SYNC averaging, ASYNC staleness, idempotency and waiting, against the core library. */
class TrainingProtocolTest {

  /** The same run, computed by the core library in this process. */
  static ScheduleFreeOptimizer reference() {
    ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            Variant.SGD,
            List.of(TensorSpec.of("w", 3, 4), TensorSpec.of("b", 5)),
            List.of(
                new GroupSpec(
                    "all",
                    NAMES,
                    Hyperparameters.defaults(Variant.SGD).toBuilder()
                        .lr(0.1)
                        .beta(0.9)
                        .warmupSteps(3)
                        .build())),
            1);
    Map<String, float[]> init = new LinkedHashMap<>();
    float[][] v = Harness.random(7);
    init.put("w", v[0]);
    init.put("b", v[1]);
    opt.setInitialValues(init);
    return opt;
  }

  static float[][] grad(int step, int replica) {
    return Harness.random(1000L * step + replica);
  }

  static void referenceStep(ScheduleFreeOptimizer opt, float[][]... replicas) {
    Map<String, float[][]> g = new LinkedHashMap<>();
    for (int t = 0; t < NAMES.size(); t++) {
      float[][] per = new float[replicas.length][];
      for (int r = 0; r < replicas.length; r++) {
        per[r] = replicas[r][t];
      }
      g.put(NAMES.get(t), per);
    }
    opt.step(g);
  }

  static void assertSameAsReference(Harness h, String run, ScheduleFreeOptimizer ref) {
    for (var seq : List.of(Sequence.SEQUENCE_TRAIN, Sequence.SEQUENCE_EVAL)) {
      Parameters p = h.read(run, seq);
      var coreSeq =
          seq == Sequence.SEQUENCE_TRAIN
              ? dev.roadless.optimizer.core.Sequence.TRAIN
              : dev.roadless.optimizer.core.Sequence.EVAL;
      for (String name : NAMES) {
        assertArrayEquals(ref.read(coreSeq, name), p.get(name), seq + " " + name);
      }
      assertEquals(ref.stepCount(), p.step());
    }
  }

  @Test
  void sync_twoReplicas_equalsCoreLibraryBitForBit() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("sync", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = reference();
      for (int k = 0; k < 6; k++) {
        // Replica 1 first on odd steps: the arrival order must not matter.
        int first = k % 2;
        PushGradientsResponse a =
            h.client.push("sync", first, k, NAMES, grad(k, first), DataType.DATA_TYPE_FLOAT32);
        assertEquals(PushOutcome.PUSH_OUTCOME_ACCEPTED, a.getOutcome());
        PushGradientsResponse b =
            h.client.push(
                "sync", 1 - first, k, NAMES, grad(k, 1 - first), DataType.DATA_TYPE_FLOAT32);
        assertEquals(PushOutcome.PUSH_OUTCOME_APPLIED, b.getOutcome());
        assertEquals(k + 1, b.getCurrentStep());
        referenceStep(ref, grad(k, 0), grad(k, 1));
        assertSameAsReference(h, "sync", ref);
      }
    }
  }

  @Test
  void sync_duplicatePushes_appliedOnce() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("dup", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = reference();
      h.client.push("dup", 0, 0, NAMES, grad(0, 0), DataType.DATA_TYPE_FLOAT32);
      var again = h.client.push("dup", 0, 0, NAMES, grad(0, 0), DataType.DATA_TYPE_FLOAT32);
      assertTrue(again.getDuplicate());
      h.client.push("dup", 1, 0, NAMES, grad(0, 1), DataType.DATA_TYPE_FLOAT32);
      var late = h.client.push("dup", 1, 0, NAMES, grad(0, 1), DataType.DATA_TYPE_FLOAT32);
      assertTrue(late.getDuplicate());
      assertEquals(PushOutcome.PUSH_OUTCOME_APPLIED, late.getOutcome());
      referenceStep(ref, grad(0, 0), grad(0, 1));
      assertSameAsReference(h, "dup", ref);
    }
  }

  @Test
  void async_pushesApplyOneByOne_staleOnesRefused() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("async", Harness.spec(2, StepMode.STEP_MODE_ASYNC, 1));
      ScheduleFreeOptimizer ref = reference();
      var r0 = h.client.push("async", 0, 0, NAMES, grad(0, 0), DataType.DATA_TYPE_FLOAT32);
      assertEquals(0, r0.getAppliedAsStep());
      var r1 = h.client.push("async", 1, 0, NAMES, grad(0, 1), DataType.DATA_TYPE_FLOAT32);
      assertEquals(1, r1.getAppliedAsStep(), "a push one step stale is applied as step 1");
      referenceStep(ref, grad(0, 0));
      referenceStep(ref, grad(0, 1));
      var dup = h.client.push("async", 1, 0, NAMES, grad(0, 1), DataType.DATA_TYPE_FLOAT32);
      assertTrue(dup.getDuplicate());
      var r2 = h.client.push("async", 0, 2, NAMES, grad(2, 0), DataType.DATA_TYPE_FLOAT32);
      assertEquals(2, r2.getAppliedAsStep());
      referenceStep(ref, grad(2, 0));
      String before = h.fingerprint("async");
      // The run is at step 3; a push computed at step 1 is 2 > max_staleness = 1 steps old.
      assertRefused(
          Code.ABORTED,
          "STEP_STALE",
          () -> h.client.push("async", 1, 1, NAMES, grad(1, 1), DataType.DATA_TYPE_FLOAT32));
      assertEquals(before, h.fingerprint("async"));
      assertSameAsReference(h, "async", ref);
    }
  }

  @Test
  void push_bfloat16_equalsFloat32OfRoundedValues() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("bf16", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = reference();
      float[][] g = grad(0, 0);
      h.client.push("bf16", 0, 0, NAMES, g, DataType.DATA_TYPE_BFLOAT16);
      float[][] rounded = new float[g.length][];
      for (int t = 0; t < g.length; t++) {
        rounded[t] = new float[g[t].length];
        for (int i = 0; i < g[t].length; i++) {
          rounded[t][i] = Bfloat16.toFloat(Bfloat16.fromFloat(g[t][i]));
        }
      }
      referenceStep(ref, rounded);
      assertSameAsReference(h, "bf16", ref);
    }
  }

  @Test
  void getParameters_minStep_waitsForTheStep() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("wait", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      CompletableFuture<Parameters> next =
          CompletableFuture.supplyAsync(
              () -> h.client.parameters("wait", Sequence.SEQUENCE_TRAIN, 1));
      h.client.push("wait", 0, 0, NAMES, grad(0, 0), DataType.DATA_TYPE_FLOAT32);
      assertFalse(next.isDone(), "answered before replica 1 pushed");
      h.client.push("wait", 1, 0, NAMES, grad(0, 1), DataType.DATA_TYPE_FLOAT32);
      assertEquals(1, next.get(20, TimeUnit.SECONDS).step());
    }
  }

  @Test
  void updateHyperparameters_lrChange_takesEffectAtNextStep() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("lr", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = reference();
      h.client.push("lr", 0, 0, NAMES, grad(0, 0), DataType.DATA_TYPE_FLOAT32);
      referenceStep(ref, grad(0, 0));
      h.client.updateHyperparameters(
          "lr",
          "all",
          dev.roadless.proto.optimizer.v1.Hyperparameters.newBuilder().setLr(0.02).build());
      ref.setHyperparameters("all", ref.hyperparameters("all").withLr(0.02));
      assertSameAsReference(h, "lr", ref);
      h.client.push("lr", 0, 1, NAMES, grad(1, 0), DataType.DATA_TYPE_FLOAT32);
      referenceStep(ref, grad(1, 0));
      assertSameAsReference(h, "lr", ref);
      assertEquals(0.02 * 2 / 3, h.client.status("lr").getGroups(0).getLrK(), 1e-15);
    }
  }
}
