package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.optimizer.server.StateFiles;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** Export, encode, decode, import and continue: bit-identical to a run that never stopped. */
class ExactResumeTest {
  private static final int N = 5;
  private static final int M = 6;

  @TestFactory
  Stream<DynamicTest> fromState_afterCodecRoundTrip_continuesBitIdentical() {
    List<DynamicTest> tests = new ArrayList<>();
    for (Variant v : Variant.values()) {
      Problems.configs(v)
          .forEach(
              (name, hp) ->
                  tests.add(DynamicTest.dynamicTest(v + " " + name, () -> resume(v, hp))));
    }
    return tests.stream();
  }

  private static void resume(Variant v, Hyperparameters hp) throws IOException {
    try (ScheduleFreeOptimizer straight = Problems.build(v, hp, 2, 5);
        ScheduleFreeOptimizer first = Problems.build(v, hp, 1, 5)) {
      Random a = new Random(3);
      Random b = new Random(3);
      Problems.run(straight, a, N, 2);
      Problems.run(first, b, N, 2);
      // A live change just before the export must survive it too.
      Hyperparameters h = straight.hyperparameters("head");
      Hyperparameters changed = h.toBuilder().lr(h.lr() * 2).beta(0.6).build();
      straight.setHyperparameters("head", changed);
      first.setHyperparameters("head", changed);
      byte[] bytes = StateFiles.encode(first.exportState());
      try (ScheduleFreeOptimizer resumed =
          ScheduleFreeOptimizer.fromState(StateFiles.decode(bytes), 3)) {
        assertEquals(N, resumed.stepCount());
        Problems.run(straight, a, M, 1 + M % 3);
        Problems.run(resumed, b, M, 1 + M % 3);
        List<String> d = Problems.differences(straight.exportState(), resumed.exportState());
        assertTrue(d.isEmpty(), () -> String.join("\n", d));
        for (TensorSpec t : straight.tensors()) {
          List<String> y = new ArrayList<>();
          Problems.diff(
              y,
              t.name() + ".y",
              straight.read(Sequence.TRAIN, t.name()),
              resumed.read(Sequence.TRAIN, t.name()));
          assertTrue(y.isEmpty(), () -> String.join("\n", y));
        }
      }
    }
  }

  @Test
  void fromState_beforeFirstStep_keepsInitialValuesAndSchedule() throws IOException {
    Hyperparameters hp = Problems.first(Variant.SGD);
    try (ScheduleFreeOptimizer a = Problems.build(Variant.SGD, hp, 1, 8);
        ScheduleFreeOptimizer b =
            ScheduleFreeOptimizer.fromState(
                StateFiles.decode(StateFiles.encode(a.exportState())), 1)) {
      Problems.run(a, new Random(1), 3, 1);
      Problems.run(b, new Random(1), 3, 1);
      assertTrue(Problems.differences(a.exportState(), b.exportState()).isEmpty());
    }
  }
}
