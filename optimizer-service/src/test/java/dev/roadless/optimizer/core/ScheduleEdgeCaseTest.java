package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The schedule's corner cases of ALGORITHM.md section 2, pinned. */
class ScheduleEdgeCaseTest {
  private static final float[] INIT = {1.5f, -2f, 0.25f};
  private static final float[] GRAD = {0.3f, -0.7f, 1.1f};

  private static ScheduleFreeOptimizer single(Variant v, Hyperparameters hp) {
    ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            v, List.of(TensorSpec.of("p", 3)), List.of(new GroupSpec("g", List.of("p"), hp)), 1);
    opt.setInitialValues(Map.of("p", INIT.clone()));
    return opt;
  }

  private static void step(ScheduleFreeOptimizer opt, float[] g) {
    opt.step(Map.of("p", new float[][] {g}));
  }

  @Test
  void step_radamSilentPhase_weightSumZeroGivesCZeroAndNothingMoves() {
    Hyperparameters hp = Hyperparameters.defaults(Variant.RADAM).toBuilder().beta2(0.99).build();
    try (ScheduleFreeOptimizer opt = single(Variant.RADAM, hp)) {
      for (int k = 0; k < 4; k++) {
        step(opt, GRAD);
        GroupStatus s = opt.status("g");
        assertEquals(0.0, s.lrK());
        assertEquals(0.0, s.weightSum());
        assertEquals(0.0, s.ck()); // not NaN
        assertArrayEquals(INIT, opt.read(Sequence.EVAL, "p"));
        assertArrayEquals(INIT, opt.read(Sequence.BASE, "p"));
        // y is recomputed from x and z as the reference classes do: beta*x + (1-beta)*z can round
        // an ulp away from x even where x == z.
        float[] y = opt.read(Sequence.TRAIN, "p");
        for (int i = 0; i < y.length; i++) {
          assertEquals(INIT[i], y[i], Math.ulp(INIT[i]));
        }
      }
      step(opt, GRAD); // k = 4: rho_t > 4, the first rectified step has all the weight
      assertEquals(1.0, opt.status("g").ck());
    }
  }

  @Test
  void step_radamSilentWithWeightLrPowerZero_countsInitialPointWithWeightOne() {
    Hyperparameters hp =
        Hyperparameters.defaults(Variant.RADAM).toBuilder().beta2(0.99).weightLrPower(0).build();
    try (ScheduleFreeOptimizer opt = single(Variant.RADAM, hp)) {
      for (int k = 0; k < 5; k++) {
        step(opt, GRAD);
        assertEquals(1.0 / (k + 1), opt.status("g").ck(), 1e-15); // 0.0^0 = 1
        assertEquals(k + 1.0, opt.status("g").weightSum());
      }
    }
  }

  @Test
  void step_firstStepWithWarmup_usesLrOverWarmupSteps() {
    double lr = 0.4;
    Hyperparameters hp =
        Hyperparameters.defaults(Variant.SGD).toBuilder().lr(lr).warmupSteps(4).build();
    try (ScheduleFreeOptimizer opt = single(Variant.SGD, hp)) {
      step(opt, GRAD);
      assertEquals(lr / 4, opt.status("g").lrK());
      float[] z = opt.read(Sequence.BASE, "p");
      for (int i = 0; i < 3; i++) {
        assertEquals(Math.fma((float) -(lr / 4), GRAD[i], INIT[i]), z[i]); // exactly that rate
      }
      assertArrayEquals(z, opt.read(Sequence.EVAL, "p")); // c = 1 at k = 0
      step(opt, GRAD);
      assertEquals(lr * 2 / 4, opt.status("g").lrK());
    }
  }

  @Test
  void setHyperparameters_lrChangedBetweenSteps_takesEffectAtNextStepOnly() {
    Hyperparameters hp = Hyperparameters.defaults(Variant.SGD).toBuilder().lr(0.1).build();
    try (ScheduleFreeOptimizer opt = single(Variant.SGD, hp)) {
      step(opt, GRAD);
      step(opt, GRAD);
      OptimizerState before = opt.exportState();
      GroupStatus s = opt.status("g");
      opt.setHyperparameters("g", hp.withLr(0.05));
      GroupStatus after = opt.status("g");
      assertEquals(0.05, after.lr());
      assertEquals(s.lrK(), after.lrK()); // not retroactive
      assertEquals(s.lrMax(), after.lrMax());
      assertEquals(List.of(), Problems.arrayDifferences(before, opt.exportState()));
      float[] z = opt.read(Sequence.BASE, "p");
      step(opt, GRAD);
      assertEquals(0.05, opt.status("g").lrK());
      assertEquals(0.1, opt.status("g").lrMax()); // lr_max never decreases
      float[] z2 = opt.read(Sequence.BASE, "p");
      for (int i = 0; i < 3; i++) {
        assertEquals(Math.fma(-0.05f, GRAD[i], z[i]), z2[i]);
      }
    }
  }
}
