package dev.roadless.optimizer.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.GroupStatus;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.testing.GoldenCases;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Runs every {@code kind: "optimizer"} golden case in {@code roadless.golden.dir} (default: the
 * repository's {@code testdata/golden}) free-running from the initial parameters with the recorded
 * gradients, and compares y, x, z, the moments and the schedule scalars after every step, at the
 * tolerance {@link ErrorStats} states. Parameter shapes and the step count come from the case;
 * other files and kinds are listed and skipped ({@link GoldenCases}). See FORMAT.md.
 */
class GoldenOptimizerTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TestFactory
  Stream<DynamicTest> goldenFiles_freeRunning_matchReferenceWithinTolerance() {
    return cases(GoldenCases.dir());
  }

  /** One dynamic test per optimizer case of {@code dir}; other files as {@link GoldenCases}. */
  static Stream<DynamicTest> cases(Path dir) {
    return GoldenCases.tests(dir, c -> runCase(c.get("case").asText(), c), "optimizer");
  }

  private static void runCase(String name, JsonNode root) {
    GoldenMapping.Mapped mapped = GoldenMapping.map(root);
    List<TensorSpec> specs = new ArrayList<>();
    Map<String, float[]> initial = new LinkedHashMap<>();
    for (JsonNode p : root.path("params")) {
      int[] shape = JSON.convertValue(p.get("shape"), int[].class);
      specs.add(new TensorSpec(p.get("name").asText(), shape));
      initial.put(p.get("name").asText(), floats(p.get("initial")));
    }
    List<String> names = new ArrayList<>(initial.keySet());
    ErrorStats stats = new ErrorStats(root.path("steps").size());
    int roundTrips = 0;
    try (ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            mapped.variant(), specs, List.of(new GroupSpec("g", names, mapped.hp())), 1)) {
      opt.setInitialValues(initial);
      JsonNode steps = root.path("steps");
      assertFalse(steps.isEmpty(), name + ": no steps");
      for (JsonNode step : steps) {
        long k = step.path("k").asLong();
        assertEquals(k, opt.stepCount(), name + ": steps out of order");
        Map<String, float[][]> grads = new HashMap<>();
        for (String n : names) {
          grads.put(n, new float[][] {floats(step.path("grads").get(n))});
        }
        opt.step(grads);
        compareStep(name + " step " + k, opt, step, stats);
        roundTrips += step.path("roundtrip_applied").asBoolean(false) ? 1 : 0;
      }
      System.out.println(
          String.format(
              Locale.ROOT,
              "golden %-16s %-28s %-12s steps %3d  max abs %.3e  max rel %.3e  bit-exact %6.2f%%%s",
              name,
              root.path("optimizer").asText(),
              mapped.variant(),
              steps.size(),
              stats.maxAbs(),
              stats.maxRel(),
              100 * stats.bitExactFraction(),
              roundTrips > 0 ? "  (reference resumed from y_roundtrip " + roundTrips + "x)" : ""));
    }
    List<String> f = stats.failures();
    assertTrue(
        f.isEmpty(),
        () ->
            name
                + ": "
                + f.size()
                + " mismatches, first: "
                + String.join("\n", f.subList(0, Math.min(10, f.size()))));
  }

  private static void compareStep(
      String where, ScheduleFreeOptimizer opt, JsonNode step, ErrorStats stats) {
    OptimizerState state = opt.exportState();
    Map<String, OptimizerState.TensorState> byName = new HashMap<>();
    for (OptimizerState.TensorState t : state.tensorStates()) {
      byName.put(t.name(), t);
    }
    GroupStatus s = opt.status("g");
    for (Iterator<Map.Entry<String, JsonNode>> it = step.path("after").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String tensor = e.getKey();
      for (Iterator<Map.Entry<String, JsonNode>> f = e.getValue().fields(); f.hasNext(); ) {
        Map.Entry<String, JsonNode> field = f.next();
        String at = where + " " + tensor + "." + field.getKey();
        if (field.getKey().equals("step")) {
          // torch Adam's float32 step counter equals our k until it saturates at 2^24.
          stats.scalar(at, (float) Math.min(s.k(), 1L << 24), field.getValue().asDouble());
          continue;
        }
        float[] ours = stateArray(opt, byName.get(tensor), field.getKey(), at, stats);
        if (ours != null) {
          stats.compare(at, ours, floats(field.getValue()));
        }
      }
    }
    compareScalars(where, s, step.path("scalars"), step.path("group_after"), stats);
  }

  private static float[] stateArray(
      ScheduleFreeOptimizer opt,
      OptimizerState.TensorState t,
      String key,
      String at,
      ErrorStats stats) {
    if (t == null) {
      stats.fail(at + ": unknown tensor");
      return null;
    }
    float[] a =
        switch (key) {
          // y_roundtrip is y after an eval()/train() pair upstream; ours never drifts.
          case "y", "y_roundtrip" -> opt.read(Sequence.TRAIN, t.name());
          case "x" -> opt.read(Sequence.EVAL, t.name());
          case "z" -> opt.read(Sequence.BASE, t.name());
          case "exp_avg_sq" -> t.v();
          case "exp_avg" -> t.m();
          default -> null;
        };
    if (a == null) {
      stats.fail(at + ": state field not understood or not kept");
    }
    return a;
  }

  private static void compareScalars(
      String where, GroupStatus s, JsonNode scalars, JsonNode after, ErrorStats stats) {
    stats.scalar(where + " lr_k", s.lrK(), scalars.path("lr").asDouble(Double.NaN));
    stats.scalar(where + " lr_max", s.lrMax(), scalars.path("lr_max").asDouble(Double.NaN));
    stats.scalar(
        where + " weight_sum", s.weightSum(), scalars.path("weight_sum").asDouble(Double.NaN));
    stats.scalar(where + " ckp1", s.ck(), scalars.path("ckp1").asDouble(Double.NaN));
    stats.scalar(where + " k", s.k(), after.path("k").asDouble(Double.NaN));
    stats.scalar(where + " live lr", s.lr(), after.path("lr").asDouble(Double.NaN));
    if (after.has("scheduled_lr")) {
      stats.scalar(where + " scheduled_lr", s.lrK(), after.get("scheduled_lr").asDouble());
    }
    stats.scalar(where + " group lr_max", s.lrMax(), after.path("lr_max").asDouble(Double.NaN));
    stats.scalar(
        where + " group weight_sum", s.weightSum(), after.path("weight_sum").asDouble(Double.NaN));
  }

  static float[] floats(JsonNode array) {
    float[] out = new float[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) array.get(i).asDouble();
    }
    return out;
  }
}
