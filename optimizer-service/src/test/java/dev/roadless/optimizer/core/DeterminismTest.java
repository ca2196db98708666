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
