package dev.roadless.trainer.golden;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.testing.GoldenCases;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.eval.BatchNormRecalibration;
import dev.roadless.trainer.eval.BatchNormRecalibration.Options;
import dev.roadless.trainer.eval.RecomputedStatistics;
import dev.roadless.trainer.model.GradientResult;
import dev.roadless.trainer.model.Model;
import dev.roadless.trainer.model.ModelSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * {@code kind: "bn_warmup"} (FORMAT.md section 5), the compute part (the optimizer steps belong to
 * the optimizer service's tests):
 *
 * <ol>
 *   <li>every training step teacher-forced: each step's forward/backward at the logged parameters
 *       and running statistics reproduces the logged loss, gradients and running statistics;
 *   <li>every scenario's {@code test_logits} from its weights and statistics (eval mode);
 *   <li>statistics rebuilt at {@code params_eval_mode_x}: EMA continuing from the training
 *       statistics reproduces {@code x_weights_readme_warmup}, CUMULATIVE (PyTorch momentum=None)
 *       reproduces {@code x_weights_precise_bn}, each with its logits; the training model's own
 *       buffers stay untouched.
 * </ol>
 *
 * <p>Sizes come from the case: the number of steps from {@code train_log}, batch sizes from the
 * index lists, the image shape from {@code dataset.x}, the warmup count from {@code
 * warmup_batches}, the starting count from {@code initial_buffers}. (This suite used to assert the
 * pooled sample count as {@code 50 * 16 * 8 * 8}, the visible case's warmup count, batch size and
 * image size.)
 *
 * <p>Tolerances ({@link ErrorReport}, from the stated rtol 1e-5, atol 1e-6): loss, logits and
 * statistics {@code |a-b| <= 1e-6 * max(1, max|ref|) + 1e-5 * |ref|} per element; gradients
 * absolute {@code 1e-6 * max(1, G) + 1e-5 * G}, {@code G} the largest |grad| of the step (FORMAT.md
 * section 4); counts exact. (This suite used {@code 2e-6 * max(max|ref|, 1)} per array and {@code
 * 5e-6 * G} for gradients, both fitted near the visible case.)
 */
class BnWarmupGoldenTest {
  @TestFactory
  Stream<DynamicTest> bnWarmup_everyCase_matchesPyTorch() {
    return GoldenCases.tests(BnWarmupGoldenTest::check, "bn_warmup");
  }

  /** Runs one case and fails on any array over its tolerance. */
  static void check(JsonNode c) {
    Data d = new Data(c);
    Model model = Model.create(ModelSpec.parse(c.get("architecture").asText(), d.exampleShape), 0);
    assertEquals(List.of("bn"), model.batchNormLayers());
    ErrorReport report = new ErrorReport(c.get("case").asText());
    trainTeacherForced(c, d, model, report);
    scenarios(c, d, model, report);
    recomputed(c, d, model, report);
    report.assertOk();
  }

  private static void trainTeacherForced(JsonNode c, Data d, Model model, ErrorReport report) {
    Map<String, float[]> params = Tensors.floatMap(c.get("initial_params"));
    JsonNode buf = c.get("initial_buffers");
    long initialCount = buf.get("bn.num_batches_tracked").asLong();
    BatchNormBuffers bn =
        BatchNormBuffers.of(
            Tensors.floats(buf.get("bn.running_mean")),
            Tensors.floats(buf.get("bn.running_var")),
            initialCount,
            momentum(model));
    JsonNode log = c.get("train_log");
    for (int t = 0; t < log.size(); t++) {
      JsonNode step = log.get(t);
      String s = "step" + t + " ";
      model.setParameters(params);
      model.setBatchNormBuffers(Map.of("bn", bn));
      Batch b = d.batch(c.get("train_batches").get(t));
      GradientResult r = model.computeGradient(b.inputs(), b.labels(), b.size());
      report.scalar(s + "loss", r.loss(), step.get("loss").asDouble());
      report.gradients(s + "grad ", r.gradients(), Tensors.floatMap(step.get("grads")));
      BatchNormBuffers after = model.batchNormBuffers().get("bn");
      float[] refMean = Tensors.floats(step.get("bn_running_mean_after"));
      float[] refVar = Tensors.floats(step.get("bn_running_var_after"));
      report.allclose(s + "running_mean", after.runningMean(), refMean);
      report.allclose(s + "running_var", after.runningVar(), refVar);
      long tracked = initialCount + t + 1; // one per train-mode forward (FORMAT.md section 3)
      report.exact(s + "num_batches_tracked", after.numBatchesTracked(), tracked);
      // Teacher forcing: the next step starts from the logged state, not from ours.
      params = Tensors.floatMap(step.get("params_after"));
      bn = BatchNormBuffers.of(refMean, refVar, tracked, momentum(model));
    }
  }

  private static void scenarios(JsonNode c, Data d, Model model, ErrorReport report) {
    c.get("scenarios")
        .properties()
        .forEach(
            e -> {
              JsonNode sc = e.getValue();
              String weights =
                  e.getKey().startsWith("y_") ? "params_train_mode_y" : "params_eval_mode_x";
              model.setParameters(Tensors.floatMap(c.get(weights)));
              model.setBatchNormBuffers(Map.of("bn", buffers(sc)));
              report.allclose(
                  e.getKey() + " test_logits",
                  model.evalLogits(d.testX, d.testLabels.length),
                  Tensors.floats(sc.get("test_logits")));
            });
  }

  private static void recomputed(JsonNode c, Data d, Model model, ErrorReport report) {
    Map<String, float[]> x = Tensors.floatMap(c.get("params_eval_mode_x"));
    model.setParameters(Tensors.floatMap(c.get("params_train_mode_y")));
    model.setBatchNormBuffers(Map.of("bn", buffers(c.get("stats_after_training"))));
    Map<String, float[]> paramsBefore = model.parameters();
    BatchNormBuffers before = model.batchNormBuffers().get("bn");
    List<Batch> warmup = new ArrayList<>();
    c.get("warmup_batches").forEach(idx -> warmup.add(d.batch(idx)));

    RecomputedStatistics ema =
        BatchNormRecalibration.recompute(model, x, warmup, Options.emaContinue());
    compare("x_weights_readme_warmup", c, d, model, x, ema, report);
    RecomputedStatistics cma =
        BatchNormRecalibration.recompute(model, x, warmup, Options.cumulative());
    compare("x_weights_precise_bn", c, d, model, x, cma, report);

    // The training model is untouched by the recomputation.
    BatchNormBuffers after = model.batchNormBuffers().get("bn");
    assertArrayEquals(before.runningMean(), after.runningMean());
    assertArrayEquals(before.runningVar(), after.runningVar());
    assertEquals(before.numBatchesTracked(), after.numBatchesTracked());
    model.parameters().forEach((k, v) -> assertArrayEquals(paramsBefore.get(k), v, k));

    // PRECISE pools all samples: the same mean as the equal-weight average of the batch means when
    // the warmup batches are of equal size (compared only then); its variance adds the spread of
    // the batch means and divides by n-1 of all samples instead of averaging per-batch unbiased
    // variances, so it differs slightly (printed, not golden).
    RecomputedStatistics precise =
        BatchNormRecalibration.recompute(model, x, warmup, Options.precise());
    BatchNormBuffers p = precise.buffers().get("bn");
    BatchNormBuffers golden = buffers(c.get("scenarios").get("x_weights_precise_bn"));
    if (warmup.stream().mapToInt(Batch::size).distinct().count() == 1) {
      report.allclose("PRECISE running_mean", p.runningMean(), golden.runningMean());
    }
    float[] pv = p.runningVar();
    float[] gv = golden.runningVar();
    System.out.printf(
        Locale.ROOT,
        "golden %-24s PRECISE (pooled) running_var %s vs momentum=None %s%n",
        c.get("case").asText(),
        Arrays.toString(pv),
        Arrays.toString(gv));
    // One sample per warmup example and pixel: sum of batch sizes times H*W of dataset.x.
    long pixels = d.exampleSize / d.exampleShape[0];
    long samples = warmup.stream().mapToLong(Batch::size).sum() * pixels;
    assertEquals(samples, precise.statistics().get("bn").count(), "PRECISE sample count");
  }

  private static void compare(
      String scenario,
      JsonNode c,
      Data d,
      Model model,
      Map<String, float[]> x,
      RecomputedStatistics got,
      ErrorReport report) {
    JsonNode ref = c.get("scenarios").get(scenario);
    BatchNormBuffers b = got.buffers().get("bn");
    report.allclose(scenario + " running_mean", b.runningMean(), floats(ref, "running_mean"));
    report.allclose(scenario + " running_var", b.runningVar(), floats(ref, "running_var"));
    report.exact(
        scenario + " num_batches_tracked",
        b.numBatchesTracked(),
        ref.get("num_batches_tracked").asLong());
    Model eval = model.copy();
    eval.setParameters(x);
    eval.setBatchNormBuffers(got.buffers());
    report.allclose(
        scenario + " test_logits",
        eval.evalLogits(d.testX, d.testLabels.length),
        floats(ref, "test_logits"));
  }

  private static Double momentum(Model model) {
    return model.batchNormBuffers().get("bn").momentum();
  }

  private static BatchNormBuffers buffers(JsonNode stats) {
    return BatchNormBuffers.of(
        floats(stats, "running_mean"),
        floats(stats, "running_var"),
        stats.get("num_batches_tracked").asLong(),
        0.1);
  }

  private static float[] floats(JsonNode parent, String field) {
    return Tensors.floats(parent.get(field));
  }

  /** The dataset and the fixed test batch. */
  private static final class Data {
    final float[] x;
    final int[] labels;
    final int[] exampleShape;
    final int exampleSize;
    final float[] testX;
    final int[] testLabels;

    Data(JsonNode c) {
      JsonNode ds = c.get("dataset");
      x = Tensors.floats(ds.get("x"));
      labels = Tensors.ints(ds.get("labels"));
      int[] shape = Tensors.shape(ds.get("x"));
      exampleShape = Arrays.copyOfRange(shape, 1, shape.length);
      exampleSize = x.length / shape[0];
      testX = Tensors.floats(c.get("test_batch").get("x"));
      testLabels = Tensors.ints(c.get("test_batch").get("labels"));
    }

    Batch batch(JsonNode indices) {
      int[] idx = Tensors.intList(indices);
      float[] in = new float[idx.length * exampleSize];
      int[] y = new int[idx.length];
      for (int i = 0; i < idx.length; i++) {
        System.arraycopy(x, idx[i] * exampleSize, in, i * exampleSize, exampleSize);
        y[i] = labels[idx[i]];
      }
      return new Batch(in, y, idx.length);
    }
  }
}
