package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The fused, chunked, multi-threaded kernels against {@link SimpleReference} on random data, for
 * every variant and option set: bit for bit, every step, with replica counts, a live lr change and
 * a live beta change mixed in.
 */
class DifferentialTest {
  private static final int STEPS = 8;

  @TestFactory
  Stream<DynamicTest> step_everyVariantAndOption_bitIdenticalToSimpleReference() {
    List<DynamicTest> tests = new ArrayList<>();
    for (Variant v : Variant.values()) {
      Problems.configs(v)
          .forEach(
              (name, hp) ->
                  tests.add(DynamicTest.dynamicTest(v + " " + name, () -> compare(v, hp))));
    }
    return tests.stream();
  }

  private static void compare(Variant v, Hyperparameters hp) {
    long seed = 17;
    try (ScheduleFreeOptimizer fast = Problems.build(v, hp, 3, seed)) {
      List<GroupSpec> groups = new ArrayList<>();
      for (String g : fast.groupNames()) {
        groups.add(new GroupSpec(g, groupTensors(fast, g), fast.hyperparameters(g)));
      }
      SimpleReference simple = new SimpleReference(v, groups, Problems.values(new Random(seed)));
      Random rnd = new Random(99);
      for (int s = 0; s < STEPS; s++) {
        if (s == 3) {
          change(fast, simple, "main", fast.hyperparameters("main").withLr(hp.lr() * 0.3));
        }
        if (s == 5) {
          Hyperparameters h = fast.hyperparameters("head");
          change(fast, simple, "head", h.toBuilder().beta(h.beta() * 0.5).build());
        }
        Map<String, float[][]> g = Problems.grads(rnd, 1 + s % 3);
        fast.step(g);
        simple.step(g);
        assertSame(fast, simple, v + " step " + s);
      }
    }
  }

  private static List<String> groupTensors(ScheduleFreeOptimizer opt, String group) {
    return opt.exportState().groups().stream()
        .filter(g -> g.spec().name().equals(group))
        .findFirst()
        .orElseThrow()
        .spec()
        .tensorNames();
  }

  private static void change(
      ScheduleFreeOptimizer fast, SimpleReference simple, String group, Hyperparameters hp) {
    fast.setHyperparameters(group, hp);
    simple.setHyperparameters(group, hp);
  }

  private static void assertSame(ScheduleFreeOptimizer fast, SimpleReference simple, String at) {
    List<String> d = new ArrayList<>();
    for (OptimizerState.TensorState t : fast.exportState().tensorStates()) {
      String n = t.name();
      Problems.diff(d, at + " " + n + ".z", t.z(), simple.z(n));
      Problems.diff(d, at + " " + n + ".x", t.x(), simple.x(n));
      Problems.diff(d, at + " " + n + ".y", fast.read(Sequence.TRAIN, n), simple.y(n));
      if (t.v() != null) {
        Problems.diff(d, at + " " + n + ".v", t.v(), simple.v(n));
      }
      if (t.m() != null) {
        Problems.diff(d, at + " " + n + ".m", t.m(), simple.m(n));
      }
    }
    assertTrue(d.isEmpty(), () -> String.join("\n", d));
    assertEquals(fast.stepCount(), fast.status("head").k(), at);
  }
}
