package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Threads and replica counts must never change a bit. */
class DeterminismTest {

  @Test
  void step_oneTwoThreeThreads_bitIdentical() {
    for (Variant v : Variant.values()) {
      Hyperparameters hp = Problems.first(v);
      try (ScheduleFreeOptimizer one = Problems.build(v, hp, 1, 21);
          ScheduleFreeOptimizer two = Problems.build(v, hp, 2, 21);
          ScheduleFreeOptimizer three = Problems.build(v, hp, 3, 21)) {
        for (ScheduleFreeOptimizer o : List.of(one, two, three)) {
          Problems.run(o, new Random(4), 6, 2);
        }
        OptimizerState ref = one.exportState();
        assertEquals(List.of(), Problems.differences(ref, two.exportState()), v + " 2 threads");
        assertEquals(List.of(), Problems.differences(ref, three.exportState()), v + " 3 threads");
      }
    }
  }

  @Test
  void step_twoReplicas_meanEqualsHalfSumBitwise() {
    for (Variant v : Variant.values()) {
      Hyperparameters hp = Problems.first(v);
      try (ScheduleFreeOptimizer pair = Problems.build(v, hp, 2, 30);
          ScheduleFreeOptimizer single = Problems.build(v, hp, 2, 30)) {
        Random rnd = new Random(6);
        for (int s = 0; s < 4; s++) {
          Map<String, float[][]> g = Problems.grads(rnd, 2);
          Map<String, float[][]> mean = new HashMap<>();
          g.forEach(
              (name, reps) -> {
                float[] m = new float[reps[0].length];
                for (int i = 0; i < m.length; i++) {
                  m[i] = (reps[0][i] + reps[1][i]) / 2;
                }
                mean.put(name, new float[][] {m});
              });
          pair.step(g);
          single.step(mean);
        }
        assertEquals(
            List.of(), Problems.differences(pair.exportState(), single.exportState()), v.name());
      }
    }
  }

  /**
   * The y sink handed to {@code stepFiniteGradients} sees every element of every tensor exactly
   * once, each range already final (equal to y after the step), and the step's state is the same
   * bits as without the hook.
   */
  @Test
  void step_yWrittenHook_coversEveryElementOnce_withFinalValues() {
    for (Variant v : Variant.values()) {
      Hyperparameters hp = Problems.first(v);
      try (ScheduleFreeOptimizer hooked = Problems.build(v, hp, 2, 11);
          ScheduleFreeOptimizer plain = Problems.build(v, hp, 2, 11)) {
        List<TensorSpec> specs = Problems.specs();
        Random rnd = new Random(3);
        for (int s = 0; s < 3; s++) {
          Map<String, float[][]> byName = Problems.grads(rnd, 1);
          float[][] g = new float[specs.size()][];
          float[][] ys = new float[specs.size()][];
          float[][] copies = new float[specs.size()][];
          int[][] seen = new int[specs.size()][];
          for (int t = 0; t < specs.size(); t++) {
            int n = (int) specs.get(t).numel();
            g[t] = byName.get(specs.get(t).name())[0];
            ys[t] = new float[n];
            copies[t] = new float[n];
            seen[t] = new int[n];
          }
          hooked.stepFiniteGradients(
              g,
              ys,
              (y, t, from, to) -> {
                synchronized (seen) {
                  for (int i = from; i < to; i++) {
                    seen[t][i]++;
                  }
                }
                System.arraycopy(y[t], from, copies[t], from, to - from);
              });
          plain.stepFiniteGradients(g, null);
          for (int t = 0; t < specs.size(); t++) {
            for (int i = 0; i < seen[t].length; i++) {
              assertEquals(1, seen[t][i], v + " " + specs.get(t).name() + "[" + i + "]");
            }
            List<String> d = new java.util.ArrayList<>();
            Problems.diff(d, v + " " + specs.get(t).name(), copies[t], ys[t]);
            assertTrue(d.isEmpty(), () -> String.join("\n", d));
          }
        }
        assertEquals(
            List.of(), Problems.differences(plain.exportState(), hooked.exportState()), v.name());
      }
    }
  }

  @Test
  void step_yOut_equalsTrainReadAfterStep() {
    for (Variant v : Variant.values()) {
      try (ScheduleFreeOptimizer opt = Problems.build(v, Problems.first(v), 2, 9)) {
        Random rnd = new Random(2);
        for (int s = 0; s < 3; s++) {
          Map<String, float[]> yOut = Map.of("big", new float[Problems.BIG], "b1", new float[7]);
          opt.step(Problems.grads(rnd, 1), yOut);
          for (String n : yOut.keySet()) {
            List<String> d = new java.util.ArrayList<>();
            Problems.diff(d, v + " " + n, yOut.get(n), opt.read(Sequence.TRAIN, n));
            assertTrue(d.isEmpty(), () -> String.join("\n", d));
          }
        }
      }
    }
  }
}
