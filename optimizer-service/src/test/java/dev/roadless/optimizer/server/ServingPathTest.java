package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.Run;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The serving fast path: recycled y arrays, the Train-based session, real HTTP/2. */
class ServingPathTest {

  private static float[][] copy(float[][] a) {
    return Arrays.stream(a).map(float[]::clone).toArray(float[][]::new);
  }

  @Test
  void heldTrainSnapshot_neverChanges_whileLaterStepsRecycleArrays() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("held", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      Run run = h.server.runs().get("held");
      ReplicaSession session = new ReplicaSession(h.client, "held", 0, DataType.DATA_TYPE_FLOAT32);
      Parameters y = session.current();
      ParameterSnapshot held = run.acquireParameters(Sequence.TRAIN);
      float[][] before = copy(held.values());
      for (int k = 0; k < 6; k++) {
        y = session.next(y, TrainingProtocolTest.grad(k, 0));
      }
      assertEquals(6, y.step());
      for (int t = 0; t < before.length; t++) {
        assertArrayEquals(before[t], held.values()[t], "held snapshot changed under its reader");
      }
      held.release();
      // Once released, its arrays are reused by a later step instead of allocating new ones.
      float[][] recycled = held.values();
      boolean reused = false;
      for (int k = 6; k < 10 && !reused; k++) {
        y = session.next(y, TrainingProtocolTest.grad(k, 0));
        ParameterSnapshot now = run.acquireParameters(Sequence.TRAIN);
        reused = now.values() == recycled;
        now.release();
      }
      assertEquals(true, reused, "released y arrays were never reused");
    }
  }

  @Test
  void session_reusingArrays_fillsTheCallersArrays_bitForBit() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("reuse", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = TrainingProtocolTest.reference();
      try (ReplicaSession session =
          new ReplicaSession(h.client, "reuse", 0, DataType.DATA_TYPE_FLOAT32, true)) {
        Parameters y = session.current();
        for (int k = 0; k < 4; k++) {
          float[][] arrays = y.values();
          y = session.next(y, TrainingProtocolTest.grad(k, 0));
          TrainingProtocolTest.referenceStep(ref, TrainingProtocolTest.grad(k, 0));
          assertEquals(k + 1, y.step());
          for (int t = 0; t < NAMES.size(); t++) {
            assertSame(arrays[t], y.values()[t]);
            assertArrayEquals(ref.read(Sequence.TRAIN, NAMES.get(t)), y.values()[t]);
          }
        }
      }
    }
  }

  @Test
  void loopback_twoReplicaSessions_matchCoreLibrary_andAnswersAreFreshArrays() throws Exception {
    try (Harness h = new Harness(null, 4 << 20, true)) {
      h.newRun("http2", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = TrainingProtocolTest.reference();
      ReplicaSession[] sessions = {
        new ReplicaSession(h.client, "http2", 0, DataType.DATA_TYPE_FLOAT32),
        new ReplicaSession(h.client, "http2", 1, DataType.DATA_TYPE_BFLOAT16)
      };
      Parameters[] y = {sessions[0].current(), sessions[1].current()};
      for (int k = 0; k < 3; k++) {
        int step = k;
        Thread other =
            new Thread(() -> y[1] = sessions[1].next(y[1], TrainingProtocolTest.grad(step, 1)));
        other.start();
        Parameters before = y[0];
        y[0] = sessions[0].next(y[0], TrainingProtocolTest.grad(k, 0));
        other.join();
        assertNotSame(before.values(), y[0].values());
        TrainingProtocolTest.referenceStep(
            ref, TrainingProtocolTest.grad(k, 0), bfloat16(TrainingProtocolTest.grad(k, 1)));
        for (Parameters p : y) {
          assertEquals(k + 1, p.step());
          for (int t = 0; t < NAMES.size(); t++) {
            assertArrayEquals(ref.read(Sequence.TRAIN, NAMES.get(t)), p.values()[t]);
          }
        }
      }
      for (ReplicaSession s : sessions) {
        s.close();
      }
    }
  }

  @Test
  void sync_threeReplicas_meanFormedByTheRun_equalsCoreLibraryBitForBit() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("three", Harness.spec(3, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = TrainingProtocolTest.reference();
      for (int k = 0; k < 4; k++) {
        // Arrival order differs from replica order; the mean must not depend on it.
        for (int r : new int[] {2, 0, 1}) {
          h.client.push(
              "three", r, k, NAMES, TrainingProtocolTest.grad(k, r), DataType.DATA_TYPE_FLOAT32);
        }
        TrainingProtocolTest.referenceStep(
            ref,
            TrainingProtocolTest.grad(k, 0),
            TrainingProtocolTest.grad(k, 1),
            TrainingProtocolTest.grad(k, 2));
      }
      TrainingProtocolTest.assertSameAsReference(h, "three", ref);
    }
  }

  /** What the server sees of a bfloat16 push: each value rounded to bfloat16 and widened. */
  private static float[][] bfloat16(float[][] g) {
    float[][] out = new float[g.length][];
    for (int t = 0; t < g.length; t++) {
      out[t] = new float[g[t].length];
      for (int i = 0; i < g[t].length; i++) {
        out[t][i] =
            dev.roadless.optimizer.client.Bfloat16.toFloat(
                dev.roadless.optimizer.client.Bfloat16.fromFloat(g[t][i]));
      }
    }
    return out;
  }
}
