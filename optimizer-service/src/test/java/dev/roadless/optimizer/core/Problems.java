package dev.roadless.optimizer.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Seeded test problems: odd tensor sizes, two groups, every option of a variant switched on. */
final class Problems {
  /** A tensor larger than one chunk, so chunking and threading matter. */
  static final int BIG = 2 * 65536 + 4099;

  private Problems() {}

  static List<TensorSpec> specs() {
    return List.of(
        TensorSpec.of("w1", 3, 5),
        TensorSpec.of("big", BIG),
        TensorSpec.of("b1", 7),
        TensorSpec.of("scalar"));
  }

  /** Named hyperparameter configurations that together exercise every option of a variant. */
  static Map<String, Hyperparameters> configs(Variant v) {
    Hyperparameters d = Hyperparameters.defaults(v);
    Map<String, Hyperparameters> c = new LinkedHashMap<>();
    switch (v) {
      case SGD -> {
        c.put("plain", d.toBuilder().lr(0.3).build());
        c.put("decay-warmup", d.toBuilder().lr(0.2).weightDecay(0.05).warmupSteps(3).build());
        c.put("poly", d.toBuilder().lr(0.1).beta(0.8).r(0.5).weightLrPower(0).build());
      }
      case ADAMW -> {
        c.put("plain", d.toBuilder().lr(0.01).build());
        c.put("decay-at-y", d.toBuilder().lr(0.02).weightDecay(0.1).warmupSteps(3).build());
        c.put("decay-at-z", d.toBuilder().weightDecay(0.1).decayAtZ(true).beta2(0.99).build());
        c.put("inner", d.toBuilder().lr(0.01).innerMomentum(0.9).r(1).weightDecay(0.01).build());
      }
      case ADAMW_PAPER -> {
        c.put("plain", d.toBuilder().lr(0.01).build());
        c.put("decay-warmup", d.toBuilder().lr(0.02).weightDecay(0.1).warmupSteps(2).build());
      }
      case RADAM -> {
        c.put("silent", d.toBuilder().lr(0.01).beta2(0.99).build());
        c.put(
            "sgd-phase", d.toBuilder().beta2(0.99).silentSgdPhase(false).weightDecay(0.1).build());
        c.put("silent-wlp0", d.toBuilder().beta2(0.99).weightLrPower(0).build());
      }
      case WRAPPER_SGD -> {
        c.put("plain", d.toBuilder().lr(0.1).build());
        c.put("decay", d.toBuilder().lr(0.1).weightDecayAtY(0.05).weightDecay(0.02).build());
        c.put("momentum", d.toBuilder().lr(0.05).baseMomentum(0.9).baseDampening(0.1).build());
        c.put("nesterov", d.toBuilder().lr(0.05).baseMomentum(0.8).baseNesterov(true).build());
      }
      case WRAPPER_ADAM -> {
        c.put("plain", d.toBuilder().lr(0.01).build());
        c.put("decay", d.toBuilder().lr(0.01).weightDecayAtY(0.05).weightDecay(0.02).build());
        c.put("beta1-high", d.toBuilder().lr(0.01).baseMomentum(0.3).beta(0.7).build());
      }
    }
    return c;
  }

  /** The default configuration of a variant for tests that need just one. */
  static Hyperparameters first(Variant v) {
    return configs(v).values().iterator().next();
  }

  /** Two groups: {w1, big} with {@code hp}, {b1, scalar} with a second lr. */
  static ScheduleFreeOptimizer build(Variant v, Hyperparameters hp, int threads, long seed) {
    List<GroupSpec> groups =
        List.of(
            new GroupSpec("main", List.of("w1", "big"), hp),
            new GroupSpec("head", List.of("b1", "scalar"), hp.withLr(hp.lr() * 0.5)));
    ScheduleFreeOptimizer opt = new ScheduleFreeOptimizer(v, specs(), groups, threads);
    opt.setInitialValues(values(new Random(seed)));
    return opt;
  }

  static Map<String, float[]> values(Random rnd) {
    Map<String, float[]> m = new LinkedHashMap<>();
    for (TensorSpec s : specs()) {
      float[] a = new float[(int) s.numel()];
      for (int i = 0; i < a.length; i++) {
        a[i] = (float) rnd.nextGaussian();
      }
      m.put(s.name(), a);
    }
    return m;
  }

  /** R replicas' gradients; some exact zeros and a wide range of magnitudes. */
  static Map<String, float[][]> grads(Random rnd, int replicas) {
    Map<String, float[][]> m = new LinkedHashMap<>();
    for (TensorSpec s : specs()) {
      float[][] reps = new float[replicas][(int) s.numel()];
      for (float[] a : reps) {
        for (int i = 0; i < a.length; i++) {
          double scale = Math.pow(10, rnd.nextInt(7) - 4);
          a[i] = rnd.nextInt(10) == 0 ? 0f : (float) (scale * rnd.nextGaussian());
        }
      }
      m.put(s.name(), reps);
    }
    return m;
  }

  /** Runs {@code steps} steps with gradients from {@code rnd}. */
  static void run(ScheduleFreeOptimizer opt, Random rnd, int steps, int replicas) {
    for (int s = 0; s < steps; s++) {
      opt.step(grads(rnd, replicas));
    }
  }

  /** Every array and scalar of two states must agree bit for bit. */
  static List<String> differences(OptimizerState a, OptimizerState b) {
    List<String> d = new ArrayList<>();
    if (a.variant() != b.variant() || a.initialized() != b.initialized()) {
      d.add("variant/initialized");
    }
    if (!a.tensors().equals(b.tensors())) {
      d.add("tensor specs");
    }
    if (!a.groups().equals(b.groups())) {
      d.add("groups: " + a.groups() + " vs " + b.groups());
    }
    d.addAll(arrayDifferences(a, b));
    return d;
  }

  /** Every state array of two states must agree bit for bit. */
  static List<String> arrayDifferences(OptimizerState a, OptimizerState b) {
    List<String> d = new ArrayList<>();
    for (int t = 0; t < a.tensorStates().size(); t++) {
      OptimizerState.TensorState x = a.tensorStates().get(t);
      OptimizerState.TensorState y = b.tensorStates().get(t);
      diff(d, x.name() + ".z", x.z(), y.z());
      diff(d, x.name() + ".x", x.x(), y.x());
      diff(d, x.name() + ".v", x.v(), y.v());
      diff(d, x.name() + ".m", x.m(), y.m());
    }
    return d;
  }

  static void diff(List<String> out, String what, float[] a, float[] b) {
    if (a == null || b == null) {
      if (a != b) {
        out.add(what + " present in only one state");
      }
      return;
    }
    for (int i = 0; i < a.length; i++) {
      if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
        out.add(what + "[" + i + "]: " + a[i] + " vs " + b[i]);
        return;
      }
    }
  }
}
