package dev.roadless.trainer.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.IdxDataset;
import dev.roadless.trainer.data.Mnist;
import dev.roadless.trainer.data.Sharding;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Data parallelism (ALGORITHM.md section 6): the average of R replicas' mean gradients on equal
 * shares of a global batch versus one replica's mean gradient on the whole batch, on real MNIST
 * digits sharded by {@link Sharding}.
 *
 * <p>For a model whose examples are independent (no training-mode BatchNorm) the two agree up to
 * float32 rounding; tolerance: absolute {@code 1e-6 * largest |gradient|} per tensor. With
 * training-mode BatchNorm they do not: every replica normalises with its own shard's statistics (as
 * PyTorch DDP without SyncBatchNorm), so the averaged gradient is the gradient of "ghost batches"
 * of size B/R. The second test shows the size of that difference.
 */
class DataParallelGradientTest {
  private static final int GLOBAL_BATCH = 64;
  private static final int REPLICAS = 2;
  private static final long SEED = 42;
  private static final long STEP = 17;

  @Test
  void averagedReplicaGradients_withoutBatchNorm_equalConcatenatedBatchGradient() {
    ModelSpec spec = ModelSpec.parse("fc1=Linear(784,64) -> relu=ReLU -> fc2=Linear(64,10)", 784);
    double worst = compare(spec);
    assertTrue(worst <= 1e-6, "max abs difference / largest gradient = " + worst);
  }

  @Test
  void averagedReplicaGradients_withTrainModeBatchNorm_differFromConcatenatedBatch() {
    double worst = compare(ModelSpec.mlp(784, 64, 10));
    assertTrue(worst > 1e-3, "per-replica BatchNorm statistics must show, got " + worst);
  }

  /** Largest |averaged - whole| over all tensors, relative to the largest whole-batch gradient. */
  private static double compare(ModelSpec spec) {
    IdxDataset data = Mnist.train();
    Sharding sharding = new Sharding(SEED, data.size(), GLOBAL_BATCH, REPLICAS);
    Model reference = Model.create(spec, 7);
    Map<String, float[]> params = reference.parameters();

    Batch whole = data.batch(sharding.globalBatch(STEP));
    Map<String, float[]> full =
        reference.computeGradient(whole.inputs(), whole.labels(), whole.size()).gradients();

    float[][] sums = new float[full.size()][];
    for (int r = 0; r < REPLICAS; r++) {
      Model replica = Model.create(spec, 99); // other init, then the shared y_k
      replica.setParameters(params);
      Batch part = data.batch(sharding.slice(STEP, r));
      Map<String, float[]> g =
          replica.computeGradient(part.inputs(), part.labels(), part.size()).gradients();
      int t = 0;
      for (float[] v : g.values()) {
        sums[t] = sums[t] == null ? v.clone() : add(sums[t], v);
        t++;
      }
    }
    double largest = 0;
    double worst = 0;
    int t = 0;
    for (Map.Entry<String, float[]> e : full.entrySet()) {
      float[] avg = sums[t++];
      for (int i = 0; i < avg.length; i++) {
        avg[i] /= REPLICAS;
        worst = Math.max(worst, Math.abs(avg[i] - e.getValue()[i]));
      }
      largest = Math.max(largest, Arrays.stream(box(e.getValue())).max().orElse(0));
    }
    System.out.printf(
        "data parallel %s: max |avg of %d replicas - whole batch| = %.3e (largest grad %.3e)%n",
        spec.layers().stream().map(l -> l.getClass().getSimpleName()).toList(),
        REPLICAS,
        worst,
        largest);
    return worst / largest;
  }

  private static float[] add(float[] a, float[] b) {
    for (int i = 0; i < a.length; i++) {
      a[i] += b[i];
    }
    return a;
  }

  private static double[] box(float[] v) {
    double[] out = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Math.abs(v[i]);
    }
    return out;
  }
}
