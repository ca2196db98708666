package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** A refused call names what is wrong and leaves every bit of state as it was. */
class BadInputTest {

  /** Runs {@code call} on a stepped optimizer; asserts the exception, message and no change. */
  private static <T extends Throwable> T refused(
      Class<T> type, String messagePart, Consumer<ScheduleFreeOptimizer> call) {
    try (ScheduleFreeOptimizer opt =
        Problems.build(Variant.ADAMW, Problems.first(Variant.ADAMW), 2, 1)) {
      Problems.run(opt, new Random(1), 2, 1);
      OptimizerState before = opt.exportState();
      Executable e = () -> call.accept(opt);
      T thrown = assertThrows(type, e);
      assertTrue(
          thrown.getMessage().contains(messagePart),
          () -> "message '" + thrown.getMessage() + "' lacks '" + messagePart + "'");
      assertEquals(List.of(), Problems.differences(before, opt.exportState()));
      return thrown;
    }
  }

  private static Map<String, float[][]> goodGrads() {
    return new HashMap<>(Problems.grads(new Random(5), 2));
  }

  @Test
  void step_wrongSize_throwsNamingTensorAndChangesNothing() {
    Map<String, float[][]> g = goodGrads();
    g.put("b1", new float[][] {new float[7], new float[6]});
    refused(IllegalArgumentException.class, "'b1' has 6 elements, expected 7", o -> o.step(g));
  }

  @Test
  void step_missingTensor_throwsNamingTensorAndChangesNothing() {
    Map<String, float[][]> g = goodGrads();
    g.remove("scalar");
    refused(IllegalArgumentException.class, "missing for tensor 'scalar'", o -> o.step(g));
  }

  @Test
  void step_unknownTensor_throwsNamingTensorAndChangesNothing() {
    Map<String, float[][]> g = goodGrads();
    g.put("ghost", new float[][] {new float[1], new float[1]});
    refused(IllegalArgumentException.class, "unknown tensor 'ghost'", o -> o.step(g));
  }

  @Test
  void step_replicaCountsDiffer_throwsAndChangesNothing() {
    Map<String, float[][]> g = goodGrads();
    g.put("b1", new float[][] {new float[7]});
    refused(IllegalArgumentException.class, "same number of replica gradients", o -> o.step(g));
  }

  @Test
  void step_noReplicas_throwsAndChangesNothing() {
    Map<String, float[][]> g = goodGrads();
    g.put("b1", new float[0][]);
    refused(IllegalArgumentException.class, "'b1' has no replica gradients", o -> o.step(g));
  }

  @Test
  void step_nanInLastChunkOfSecondReplica_throwsNamingTensorReplicaAndIndex() {
    Map<String, float[][]> g = goodGrads();
    g.get("big")[1][Problems.BIG - 3] = Float.NaN;
    NonFiniteGradientException e =
        refused(NonFiniteGradientException.class, "'big' from replica 1", o -> o.step(g));
    assertEquals("big", e.tensor());
    assertEquals(1, e.replica());
    assertEquals(Problems.BIG - 3, e.index());
  }

  @Test
  void step_finiteGradientsWhoseSumOverflows_throwsNamingTensorAndIndex() {
    Map<String, float[][]> g = goodGrads();
    g.get("big")[0][Problems.BIG - 5] = 3e38f;
    g.get("big")[1][Problems.BIG - 5] = 2e38f; // both finite; the float32 sum is infinite
    NonFiniteGradientException e =
        refused(NonFiniteGradientException.class, "sum overflows", o -> o.step(g));
    assertEquals("big", e.tensor());
    assertEquals(-1, e.replica());
    assertEquals(Problems.BIG - 5, e.index());
  }

  @Test
  void step_largeFiniteGradientsWhoseSumIsFinite_areApplied() {
    Map<String, float[][]> g = goodGrads();
    g.get("big")[0][9] = 3e38f;
    g.get("big")[1][9] = -3e38f;
    try (ScheduleFreeOptimizer opt =
        Problems.build(Variant.ADAMW, Problems.first(Variant.ADAMW), 2, 1)) {
      Problems.run(opt, new Random(1), 2, 1);
      assertEquals(3, opt.step(g));
    }
  }

  @Test
  void step_infinity_throwsNonFiniteAndChangesNothing() {
    Map<String, float[][]> g = goodGrads();
    g.get("scalar")[0][0] = Float.NEGATIVE_INFINITY;
    refused(NonFiniteGradientException.class, "element 0", o -> o.step(g));
  }

  @Test
  void step_yOutWrongSize_throwsAndChangesNothing() {
    refused(
        IllegalArgumentException.class,
        "'w1' has 14 elements, expected 15",
        o -> o.step(goodGrads(), Map.of("w1", new float[14])));
  }

  @Test
  void setHyperparameters_invalid_throwsNamingFieldAndChangesNothing() {
    Hyperparameters bad = Problems.first(Variant.ADAMW).toBuilder().beta2(1.0).build();
    refused(IllegalArgumentException.class, "beta2", o -> o.setHyperparameters("main", bad));
  }

  @Test
  void setHyperparameters_switchesInnerMomentumOn_throwsAndChangesNothing() {
    Hyperparameters on = Problems.first(Variant.ADAMW).toBuilder().innerMomentum(0.9).build();
    refused(IllegalArgumentException.class, "first-moment", o -> o.setHyperparameters("main", on));
  }

  @Test
  void setHyperparameters_unknownGroup_throwsAndChangesNothing() {
    refused(
        IllegalArgumentException.class,
        "unknown group 'nope'",
        o -> o.setHyperparameters("nope", Problems.first(Variant.ADAMW)));
  }

  @Test
  void setInitialValues_afterFirstStep_throwsIllegalStateAndChangesNothing() {
    refused(
        IllegalStateException.class,
        "before the first step",
        o -> o.setInitialValues(Problems.values(new Random(3))));
  }

  @Test
  void setInitialValues_nonFinite_throwsNamingTensorAndIndex() {
    try (ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            Variant.SGD,
            List.of(TensorSpec.of("a", 2), TensorSpec.of("b", 3)),
            List.of(new GroupSpec("g", List.of("a", "b"), Hyperparameters.defaults(Variant.SGD))),
            1)) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  opt.setInitialValues(
                      Map.of("a", new float[2], "b", new float[] {0, Float.NaN, 0})));
      assertTrue(e.getMessage().contains("'b' is not finite at element 1"), e.getMessage());
      assertEquals(false, opt.isInitialized());
      assertThrows(IllegalStateException.class, () -> opt.read(Sequence.EVAL, "a"));
      assertThrows(
          IllegalStateException.class,
          () ->
              opt.step(
                  Map.of("a", new float[][] {new float[2]}, "b", new float[][] {new float[3]})));
    }
  }

  @Test
  void step_afterClose_throwsIllegalState() {
    ScheduleFreeOptimizer opt = Problems.build(Variant.SGD, Problems.first(Variant.SGD), 2, 1);
    opt.close();
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> opt.step(goodGrads()));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
  }

  @Test
  void constructor_badLayout_throwsClearMessage() {
    Hyperparameters hp = Hyperparameters.defaults(Variant.SGD);
    List<TensorSpec> two = List.of(TensorSpec.of("a", 2), TensorSpec.of("b", 2));
    assertMessage(
        "duplicate tensor name 'a'",
        () ->
            new ScheduleFreeOptimizer(
                Variant.SGD,
                List.of(TensorSpec.of("a", 1), TensorSpec.of("a", 2)),
                List.of(new GroupSpec("g", List.of("a"), hp)),
                1));
    assertMessage(
        "'b' is in no group",
        () ->
            new ScheduleFreeOptimizer(
                Variant.SGD, two, List.of(new GroupSpec("g", List.of("a"), hp)), 1));
    assertMessage(
        "'a' is in more than one group",
        () ->
            new ScheduleFreeOptimizer(
                Variant.SGD,
                two,
                List.of(
                    new GroupSpec("g", List.of("a", "b"), hp),
                    new GroupSpec("h", List.of("a"), hp)),
                1));
    assertMessage(
        "unknown tensor 'c'",
        () ->
            new ScheduleFreeOptimizer(
                Variant.SGD, two, List.of(new GroupSpec("g", List.of("a", "b", "c"), hp)), 1));
    assertMessage(
        "group 'g': lr must be finite and > 0",
        () ->
            new ScheduleFreeOptimizer(
                Variant.SGD, two, List.of(new GroupSpec("g", List.of("a", "b"), hp.withLr(0))), 1));
    assertMessage(
        "threads must be in [1, 256], got 0",
        () ->
            new ScheduleFreeOptimizer(
                Variant.SGD, two, List.of(new GroupSpec("g", List.of("a", "b"), hp)), 0));
    assertMessage("dimension 1 must be >= 1, got 0", () -> TensorSpec.of("t", 3, 0));
    assertMessage("more than 2147483639 elements", () -> TensorSpec.of("t", 65536, 65536));
    assertMessage("group 'g' has no tensors", () -> new GroupSpec("g", List.of(), hp));
  }

  @Test
  void fromState_arrayOfWrongLength_throwsNamingTensor() {
    try (ScheduleFreeOptimizer opt =
        Problems.build(Variant.SGD, Problems.first(Variant.SGD), 1, 1)) {
      OptimizerState s = opt.exportState();
      List<OptimizerState.TensorState> ts = new java.util.ArrayList<>(s.tensorStates());
      OptimizerState.TensorState b1 = ts.get(2);
      ts.set(2, new OptimizerState.TensorState("b1", new float[6], b1.x(), null, null));
      OptimizerState bad = new OptimizerState(s.variant(), s.tensors(), s.groups(), ts, true);
      assertMessage(
          "'b1': state array z has 6 elements, expected 7",
          () -> ScheduleFreeOptimizer.fromState(bad, 1));
    }
  }

  private static void assertMessage(String part, Executable e) {
    IllegalArgumentException t = assertThrows(IllegalArgumentException.class, e);
    assertTrue(
        t.getMessage().contains(part), () -> "'" + t.getMessage() + "' lacks '" + part + "'");
  }
}
