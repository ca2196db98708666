package dev.roadless.trainer.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.IdxDataset;
import dev.roadless.trainer.data.Mnist;
import dev.roadless.trainer.data.Sharding;
import dev.roadless.trainer.eval.BatchNormRecalibration.Options;
import dev.roadless.trainer.model.GradientResult;
import dev.roadless.trainer.model.Model;
import dev.roadless.trainer.model.ModelSpec;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The compute side of training end to end, without the optimizer service: the MLP trained on the
 * bundled MNIST digits by plain SGD (a test stand-in for the optimizer), then BatchNorm statistics
 * rebuilt and the hold-out set evaluated.
 */
class EvaluationTest {
  private static final IdxDataset TRAIN = Mnist.train();
  private static final IdxDataset HOLDOUT = Mnist.holdout();
  private static Model trained;

  @BeforeAll
  static void train() {
    Model m = Model.create(ModelSpec.mlp(784, 128, 10), 1);
    Sharding sharding = new Sharding(5, TRAIN.size(), 64, 1);
    float lr = 0.1f;
    for (int k = 0; k < 250; k++) {
      Batch b = TRAIN.batch(sharding.slice(k, 0));
      GradientResult r = m.computeGradient(b.inputs(), b.labels(), b.size());
      Map<String, float[]> params = m.parameters();
      r.gradients()
          .forEach(
              (name, g) -> {
                float[] p = params.get(name);
                for (int i = 0; i < p.length; i++) {
                  p[i] -= lr * g[i];
                }
              });
      m.setParameters(params);
    }
    trained = m;
  }

  private static List<Batch> batches(int count, int size, long seed) {
    Sharding s = new Sharding(seed, TRAIN.size(), size, 1);
    List<Batch> out = new ArrayList<>();
    for (int k = 0; k < count; k++) {
      out.add(TRAIN.batch(s.slice(k, 0)));
    }
    return out;
  }

  @Test
  void evaluate_trainedMlpWithRecomputedStatistics_isAccurateOnHoldout() {
    RecomputedStatistics precise =
        BatchNormRecalibration.recompute(
            trained, trained.parameters(), batches(20, 100, 9), Options.precise());
    Evaluation.Result r =
        Evaluation.evaluateWithStatistics(
            trained, trained.parameters(), precise.statistics(), HOLDOUT, 500);
    System.out.printf(
        "MLP(784-128-10), 250 SGD steps: hold-out loss %.4f, accuracy %.2f%%%n",
        r.loss(), 100 * r.accuracy());
    assertEquals(2000, r.examples());
    assertTrue(r.accuracy() >= 0.90, "accuracy " + r.accuracy());
  }

  @Test
  void recompute_preciseOnTwoReplicas_mergesToThePooledStatistics() {
    List<Batch> all = batches(8, 50, 3);
    Map<String, float[]> w = trained.parameters();
    RecomputedStatistics whole =
        BatchNormRecalibration.recompute(trained, w, all, Options.precise());
    RecomputedStatistics a =
        BatchNormRecalibration.recompute(trained, w, all.subList(0, 4), Options.precise());
    RecomputedStatistics b =
        BatchNormRecalibration.recompute(trained, w, all.subList(4, 8), Options.precise());
    BatchNormStatistics merged =
        BatchNormStatistics.merge(a.statistics().get("bn1"), b.statistics().get("bn1"));
    BatchNormStatistics ref = whole.statistics().get("bn1");
    assertEquals(ref.count(), merged.count());
    double[] m1 = ref.mean();
    double[] m2 = merged.mean();
    double[] v1 = ref.m2();
    double[] v2 = merged.m2();
    for (int c = 0; c < m1.length; c++) {
      assertEquals(m1[c], m2[c], 1e-12 * Math.max(1, Math.abs(m1[c])));
      assertEquals(v1[c], v2[c], 1e-12 * v1[c]);
    }
  }

  @Test
  void recompute_leavesTheTrainingModelUntouched() {
    Map<String, BatchNormBuffers> before = trained.batchNormBuffers();
    Map<String, float[]> params = trained.parameters();
    Map<String, float[]> other = new LinkedHashMap<>(params);
    other.put("fc2.bias", new float[10]);
    for (Options o :
        List.of(
            Options.emaContinue(), Options.emaRestart(), Options.precise(), Options.cumulative())) {
      BatchNormRecalibration.recompute(trained, other, batches(3, 32, 1), o);
    }
    BatchNormBuffers b = trained.batchNormBuffers().get("bn1");
    assertArrayEquals(before.get("bn1").runningMean(), b.runningMean());
    assertArrayEquals(before.get("bn1").runningVar(), b.runningVar());
    assertEquals(before.get("bn1").numBatchesTracked(), b.numBatchesTracked());
    trained.parameters().forEach((k, v) -> assertArrayEquals(params.get(k), v, k));
  }

  @Test
  void recompute_emaRestartVersusContinue_countsBatchesLikePyTorch() {
    long trainedCount = trained.batchNormBuffers().get("bn1").numBatchesTracked();
    List<Batch> warm = batches(5, 32, 2);
    Map<String, float[]> w = trained.parameters();
    assertEquals(
        trainedCount + 5,
        BatchNormRecalibration.recompute(trained, w, warm, Options.emaContinue())
            .buffers()
            .get("bn1")
            .numBatchesTracked());
    RecomputedStatistics restart =
        BatchNormRecalibration.recompute(trained, w, warm, Options.emaRestart());
    assertEquals(5, restart.buffers().get("bn1").numBatchesTracked());
    assertEquals(5L * 32, restart.statistics().get("bn1").count());
  }
}
