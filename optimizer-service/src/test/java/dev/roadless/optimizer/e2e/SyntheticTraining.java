package dev.roadless.optimizer.e2e;

import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Golden-style synthetic training: replica r's gradient at step k is {@code noise(seed, k, r) +
 * pull * (y - target)}, a deterministic function of (y, k, r) like a real trainer with
 * deterministic sharding. Two groups, AdamW-SF with warmup, no decay on the bias.
 */
final class SyntheticTraining {
  static final List<String> NAMES = List.of("fc.weight", "fc.bias");
  static final int[][] SHAPES = {{64, 48}, {64}};
  static final float PULL = 0.5f;

  private SyntheticTraining() {}

  static RunSpec spec(int replicas) {
    RunSpec.Builder b =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(replicas)
            .setMode(StepMode.STEP_MODE_SYNC)
            .addParameterGroups(
                ParameterGroup.newBuilder()
                    .setName("decay")
                    .addTensorNames("fc.weight")
                    .setHyperparameters(
                        dev.roadless.proto.optimizer.v1.Hyperparameters.newBuilder()
                            .setLr(0.01)
                            .setWarmupSteps(10)
                            .setWeightDecay(0.01)))
            .addParameterGroups(
                ParameterGroup.newBuilder()
                    .setName("no-decay")
                    .addTensorNames("fc.bias")
                    .setHyperparameters(
                        dev.roadless.proto.optimizer.v1.Hyperparameters.newBuilder()
                            .setLr(0.01)
                            .setWarmupSteps(10)));
    for (int t = 0; t < NAMES.size(); t++) {
      TensorDescriptor.Builder d = TensorDescriptor.newBuilder().setName(NAMES.get(t));
      for (int dim : SHAPES[t]) {
        d.addShape(dim);
      }
      b.addTensors(d);
    }
    return b.build();
  }

  static float[][] initial() {
    return noise(new SplittableRandom(42), 1f);
  }

  static float[][] target() {
    return noise(new SplittableRandom(43), 1f);
  }

  static float[][] gradient(float[][] y, long step, int replica) {
    float[][] g = noise(new SplittableRandom(1_000_003L * step + replica), 0.1f);
    float[][] target = target();
    for (int t = 0; t < g.length; t++) {
      for (int i = 0; i < g[t].length; i++) {
        g[t][i] += PULL * (y[t][i] - target[t][i]);
      }
    }
    return g;
  }

  private static float[][] noise(SplittableRandom r, float scale) {
    float[][] out = new float[SHAPES.length][];
    for (int t = 0; t < SHAPES.length; t++) {
      int n = 1;
      for (int d : SHAPES[t]) {
        n *= d;
      }
      out[t] = new float[n];
      for (int i = 0; i < n; i++) {
        out[t][i] = (float) (scale * r.nextGaussian());
      }
    }
    return out;
  }

  /** The same training in one process with the core library: the x it ends at. */
  static float[][] referenceX(int replicas, int steps) {
    Hyperparameters base =
        Hyperparameters.defaults(Variant.ADAMW).toBuilder().lr(0.01).warmupSteps(10).build();
    try (ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            Variant.ADAMW,
            List.of(
                new TensorSpec(NAMES.get(0), SHAPES[0]), new TensorSpec(NAMES.get(1), SHAPES[1])),
            List.of(
                new GroupSpec(
                    "decay", List.of("fc.weight"), base.toBuilder().weightDecay(0.01).build()),
                new GroupSpec("no-decay", List.of("fc.bias"), base)),
            1)) {
      float[][] init = initial();
      Map<String, float[]> values = new LinkedHashMap<>();
      for (int t = 0; t < NAMES.size(); t++) {
        values.put(NAMES.get(t), init[t]);
      }
      opt.setInitialValues(values);
      for (int k = 0; k < steps; k++) {
        float[][] y = new float[NAMES.size()][];
        for (int t = 0; t < y.length; t++) {
          y[t] = opt.read(Sequence.TRAIN, NAMES.get(t));
        }
        float[][][] perReplica = new float[replicas][][];
        for (int r = 0; r < replicas; r++) {
          perReplica[r] = gradient(y, k, r);
        }
        opt.step(SyntheticTraining.byTensor(NAMES, perReplica));
      }
      float[][] x = new float[NAMES.size()][];
      for (int t = 0; t < x.length; t++) {
        x[t] = opt.read(Sequence.EVAL, NAMES.get(t));
      }
      return x;
    }
  }

  /** {@code perReplica[replica][tensor]} as the optimizer's step takes it: by name, by replica. */
  static Map<String, float[][]> byTensor(List<String> names, float[][][] perReplica) {
    Map<String, float[][]> grads = new LinkedHashMap<>();
    for (int t = 0; t < names.size(); t++) {
      float[][] g = new float[perReplica.length][];
      for (int r = 0; r < perReplica.length; r++) {
        g[r] = perReplica[r][t];
      }
      grads.put(names.get(t), g);
    }
    return grads;
  }
}
