package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * A plan's previews and its commit against the whole step: every previewed y and the committed
 * state bit for bit equal to {@link ScheduleFreeOptimizer#stepFiniteGradients} on a twin optimizer,
 * and a preview never changes the state.
 */
class StepPlanTest {
  private static final int STEPS = 4;

  @TestFactory
  Stream<DynamicTest> previewThenCommit_everyVariant_bitIdenticalToWholeStep() {
    List<DynamicTest> tests = new ArrayList<>();
    for (Variant v : Variant.values()) {
      Problems.configs(v)
          .forEach(
              (name, hp) -> tests.add(DynamicTest.dynamicTest(v + " " + name, () -> twin(v, hp))));
    }
    return tests.stream();
  }

  private static void twin(Variant v, Hyperparameters hp) {
    try (ScheduleFreeOptimizer whole = Problems.build(v, hp, 2, 9);
        ScheduleFreeOptimizer planned = Problems.build(v, hp, 2, 9)) {
      Random rnd = new Random(5);
      for (int s = 0; s < STEPS; s++) {
        float[][] g = ordered(whole, Problems.grads(rnd, 1));
        float[][] yWhole = sized(whole);
        whole.stepFiniteGradients(g, yWhole);

        StepPlan plan = planned.plan();
        assertEquals(s, plan.step());
        OptimizerState before = planned.exportState();
        float[][] yPreview = sized(planned);
        // Ranges of odd sizes, previewed back to front: order and cut must not matter.
        int piece = 1 + 977 * (s + 1);
        for (int t = g.length - 1; t >= 0; t--) {
          for (int from = 0; from < g[t].length; from += piece) {
            int to = Math.min(g[t].length, from + piece);
            float[] out = new float[to - from + 3];
            assertTrue(plan.preview(t, from, to, g[t], out, 3));
            System.arraycopy(out, 3, yPreview[t], from, to - from);
          }
        }
        List<String> untouched = Problems.differences(before, planned.exportState());
        assertTrue(untouched.isEmpty(), () -> "preview wrote state: " + untouched);
        planned.commit(plan, g, null);

        List<String> d = Problems.differences(whole.exportState(), planned.exportState());
        assertTrue(d.isEmpty(), () -> String.join("\n", d));
        float[][] yRead = sized(planned);
        planned.read(Sequence.TRAIN, yRead);
        for (int t = 0; t < g.length; t++) {
          List<String> y = new ArrayList<>();
          Problems.diff(y, "preview y " + t, yWhole[t], yPreview[t]);
          Problems.diff(y, "read(TRAIN) y " + t, yWhole[t], yRead[t]);
          assertTrue(y.isEmpty(), () -> String.join("\n", y));
        }
      }
    }
  }

  @Test
  void commit_planOfAnEarlierStep_refusedAndStateUnchanged() {
    Hyperparameters hp = Problems.first(Variant.ADAMW);
    try (ScheduleFreeOptimizer opt = Problems.build(Variant.ADAMW, hp, 1, 3)) {
      Random rnd = new Random(1);
      StepPlan stale = opt.plan();
      opt.step(Problems.grads(rnd, 1));
      OptimizerState after = opt.exportState();
      float[][] g = ordered(opt, Problems.grads(rnd, 1));
      assertThrows(IllegalStateException.class, () -> opt.commit(stale, g, null));
      assertTrue(Problems.differences(after, opt.exportState()).isEmpty());
      assertEquals(1, opt.stepCount());
    }
  }

  @Test
  void commit_planOfAnotherOptimizer_refused() {
    Hyperparameters hp = Problems.first(Variant.SGD);
    try (ScheduleFreeOptimizer a = Problems.build(Variant.SGD, hp, 1, 3);
        ScheduleFreeOptimizer b = Problems.build(Variant.SGD, hp, 1, 3)) {
      float[][] g = ordered(a, Problems.grads(new Random(2), 1));
      assertThrows(IllegalStateException.class, () -> b.commit(a.plan(), g, null));
      assertEquals(0, b.stepCount());
    }
  }

  @Test
  void commit_afterHyperparameterChange_usesThePlansKernels() {
    Hyperparameters hp = Problems.first(Variant.ADAMW);
    try (ScheduleFreeOptimizer whole = Problems.build(Variant.ADAMW, hp, 1, 4);
        ScheduleFreeOptimizer planned = Problems.build(Variant.ADAMW, hp, 1, 4)) {
      float[][] g = ordered(whole, Problems.grads(new Random(8), 1));
      StepPlan plan = planned.plan();
      planned.setHyperparameters("main", hp.toBuilder().lr(hp.lr() * 3).build());
      planned.commit(plan, g, null);
      whole.stepFiniteGradients(g, null);
      assertTrue(Problems.arrayDifferences(whole.exportState(), planned.exportState()).isEmpty());
    }
  }

  @Test
  void preview_stateWouldOverflow_saysNotFinite() {
    Hyperparameters hp = Problems.first(Variant.SGD).toBuilder().lr(1e30).build();
    try (ScheduleFreeOptimizer opt = Problems.build(Variant.SGD, hp, 1, 6)) {
      float[] g = new float[7];
      java.util.Arrays.fill(g, 3e38f);
      int b1 = opt.tensors().stream().map(TensorSpec::name).toList().indexOf("b1");
      assertFalse(opt.plan().preview(b1, 0, 7, g, new float[7], 0));
    }
  }

  private static float[][] ordered(ScheduleFreeOptimizer opt, Map<String, float[][]> grads) {
    return opt.tensors().stream().map(t -> grads.get(t.name())[0]).toArray(float[][]::new);
  }

  private static float[][] sized(ScheduleFreeOptimizer opt) {
    return opt.tensors().stream().map(t -> new float[(int) t.numel()]).toArray(float[][]::new);
  }
}
