package dev.roadless.checkpoint.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.roadless.checkpoint.format.Safetensors;
import dev.roadless.checkpoint.service.BatchNormMerge;
import dev.roadless.checkpoint.service.EvalCheckpointFile;
import dev.roadless.checkpoint.service.ReplicaStatistics;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.checkpoint.testing.PyTorchLoader;
import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.eval.BatchNormRecalibration;
import dev.roadless.trainer.eval.RecomputedStatistics;
import dev.roadless.trainer.model.Model;
import dev.roadless.trainer.model.ModelSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The golden {@code bn_warmup_cnn} case (real PyTorch and schedulefree output, FORMAT.md section 5)
 * end to end through the checkpoint path: the optimizer server applies the 30 recorded gradients
 * and serves x; the trainer's model rebuilds the BatchNorm statistics at that x (EMA continuing
 * from the training statistics, as upstream's README; PRECISE split over two "replicas" and
 * merged); the checkpoint file is written as the service writes it; PyTorch loads it strictly and
 * its logits on the test batch are compared with the golden ones.
 *
 * <p>Tolerance (FORMAT.md section 6: an independent float32 port reproduces x to 1.6e-7 relative,
 * logits and running statistics to about 1e-6): {@code 2e-6 * max(1, max|ref|)} per array; counts
 * exact.
 */
class GoldenCheckpointTest {
  static final double TOL = 2e-6;

  @TempDir Path tmp;

  @Test
  void bnWarmupCnn_checkpointOfOptimizerXWithRebuiltStatistics_pyTorchReproducesGoldenLogits()
      throws Exception {
    JsonNode c =
        new ObjectMapper()
            .readTree(
                Path.of(System.getProperty("roadless.golden.dir", "../../shared/golden"))
                    .resolve("bn_warmup_cnn.json")
                    .toFile());
    List<String> order = new ArrayList<>();
    c.get("parameter_order").forEach(n -> order.add(n.asText()));
    int[] exampleShape = shape(c.get("dataset").get("x"), 1);
    String architecture = c.get("architecture").asText();

    // 1. x from the optimizer server after the recorded gradients.
    Parameters x;
    RunSpec spec = spec(c, order);
    try (OptimizerHarness h = new OptimizerHarness()) {
      OptimizerClient client = h.client(h.startOptimizer());
      client.createRun("golden", spec);
      client.uploadInitialValues("golden", order, values(c.get("initial_params"), order));
      for (JsonNode step : c.get("train_log")) {
        client.push(
            "golden",
            0,
            step.get("step").asLong(),
            order,
            values(step.get("grads"), order),
            DataType.DATA_TYPE_FLOAT32);
      }
      x = client.parameters("golden", Sequence.SEQUENCE_EVAL, 30);
    }
    assertEquals(30, x.step());
    Report report = new Report();
    for (String name : order) {
      report.relative("x " + name, x.get(name), floats(c.get("params_eval_mode_x").get(name)));
    }

    // 2. Statistics rebuilt at that x by the trainer's model, merged as the service merges them.
    Model model = Model.create(ModelSpec.parse(architecture, exampleShape), 0);
    model.setParameters(floatMap(c.get("params_train_mode_y"), order));
    model.setBatchNormBuffers(Map.of("bn", buffers(c.get("stats_after_training"))));
    Map<String, float[]> xWeights = new LinkedHashMap<>();
    order.forEach(n -> xWeights.put(n, x.get(n)));
    List<Batch> warmup = new ArrayList<>();
    c.get("warmup_batches").forEach(idx -> warmup.add(batch(c, idx, exampleShape)));

    List<BatchNormMerge.Layer> ema =
        BatchNormMerge.merge(
            BatchNormMode.BATCH_NORM_MODE_EMA,
            List.of(
                part(
                    0,
                    BatchNormRecalibration.recompute(
                        model, xWeights, warmup, BatchNormRecalibration.Options.emaContinue()))));
    JsonNode readme = c.get("scenarios").get("x_weights_readme_warmup");
    BatchNormBuffers emaBuffers = ema.get(0).buffers();
    report.relative(
        "EMA running_mean", emaBuffers.runningMean(), floats(readme.get("running_mean")));
    report.relative("EMA running_var", emaBuffers.runningVar(), floats(readme.get("running_var")));
    assertEquals(readme.get("num_batches_tracked").asLong(), emaBuffers.numBatchesTracked());

    List<ReplicaStatistics> halves = new ArrayList<>();
    for (int r = 0; r < 2; r++) {
      halves.add(
          part(
              r,
              BatchNormRecalibration.recompute(
                  model,
                  xWeights,
                  warmup.subList(25 * r, 25 * r + 25),
                  BatchNormRecalibration.Options.precise())));
    }
    List<BatchNormMerge.Layer> precise =
        BatchNormMerge.merge(BatchNormMode.BATCH_NORM_MODE_PRECISE, halves);
    BatchNormStatistics one =
        BatchNormRecalibration.recompute(
                model, xWeights, warmup, BatchNormRecalibration.Options.precise())
            .statistics()
            .get("bn");
    BatchNormStatistics two = precise.get(0).statistics();
    assertEquals(one.count(), two.count());
    report.relative("PRECISE 2 replicas vs 1 process: mean", two.mean(), one.mean(), 1e-12);
    report.relative("PRECISE 2 replicas vs 1 process: M2", two.m2(), one.m2(), 1e-12);
    // PRECISE pools all samples; the golden momentum=None scenario averages the per-batch
    // statistics. Their means agree (equal batch sizes); their variances differ by design.
    report.relative(
        "PRECISE running_mean vs golden precise_bn",
        precise.get(0).buffers().runningMean(),
        floats(c.get("scenarios").get("x_weights_precise_bn").get("running_mean")));
    assertEquals(50, precise.get(0).buffers().numBatchesTracked());

    // 3. Checkpoint files: ours, and the golden scenarios' own weights and statistics.
    List<TensorDescriptor> tensors = spec.getTensorsList();
    Map<String, Path> files = new LinkedHashMap<>();
    files.put("ema", write("ema", EvalCheckpointFile.tensors(tensors, x, ema)));
    files.put("precise", write("precise", EvalCheckpointFile.tensors(tensors, x, precise)));
    for (String scenario :
        List.of(
            "y_weights_training_stats",
            "x_weights_stale_stats",
            "x_weights_readme_warmup",
            "x_weights_precise_bn")) {
      JsonNode sc = c.get("scenarios").get(scenario);
      String weights = scenario.startsWith("y_") ? "params_train_mode_y" : "params_eval_mode_x";
      Parameters p = new Parameters(30, order, values(c.get(weights), order));
      BatchNormBuffers b = buffers(sc);
      BatchNormMerge.Layer layer =
          new BatchNormMerge.Layer(
              "bn",
              BatchNormStatistics.fromRunningBuffers(2, b.runningMean(), b.runningVar()),
              b.numBatchesTracked());
      files.put(scenario, write(scenario, EvalCheckpointFile.tensors(tensors, p, List.of(layer))));
    }

    // 4. PyTorch loads every file strictly; its logits on the test batch.
    float[] testX = floats(c.get("test_batch").get("x"));
    int n = c.get("test_batch").get("labels").get("int_values").size();
    List<float[]> torch =
        PyTorchLoader.logits(
            architecture, exampleShape, testX, n, List.copyOf(files.values()), tmp);
    List<String> keys = List.copyOf(files.keySet());
    report.relative(
        "ema file: PyTorch logits vs golden readme warmup",
        torch.get(keys.indexOf("ema")),
        floats(readme.get("test_logits")));
    Model eval = model.copy();
    eval.setParameters(xWeights);
    eval.setBatchNormBuffers(Map.of("bn", precise.get(0).buffers()));
    report.relative(
        "precise file: PyTorch logits vs Java logits",
        torch.get(keys.indexOf("precise")),
        eval.evalLogits(testX, n));
    for (String scenario : keys.subList(2, keys.size())) {
      report.relative(
          scenario + " file: PyTorch logits vs golden",
          torch.get(keys.indexOf(scenario)),
          floats(c.get("scenarios").get(scenario).get("test_logits")));
    }
    report.assertOk();
  }

  private Path write(String name, List<dev.roadless.checkpoint.format.Tensor> tensors)
      throws Exception {
    Path p = tmp.resolve(name + ".safetensors");
    EvalCheckpointFile.write(p, tensors, Map.of("format", "pt"));
    Safetensors.read(p); // and it reads back
    return p;
  }

  private static ReplicaStatistics part(int replica, RecomputedStatistics r) {
    return new ReplicaStatistics(
        replica,
        30,
        r.batches(),
        r.statistics(),
        Map.of("bn", r.buffers().get("bn").numBatchesTracked()));
  }

  private static RunSpec spec(JsonNode c, List<String> order) {
    JsonNode hp = c.get("hyperparameters");
    ParameterGroup.Builder g =
        ParameterGroup.newBuilder()
            .setName("default")
            .addAllTensorNames(order)
            .setHyperparameters(
                Hyperparameters.newBuilder()
                    .setLr(hp.get("lr").asDouble())
                    .setBeta(hp.get("betas").get(0).asDouble())
                    .setBeta2(hp.get("betas").get(1).asDouble())
                    .setEps(hp.get("eps").asDouble())
                    .setWeightDecay(hp.get("weight_decay").asDouble())
                    .setWarmupSteps(hp.get("warmup_steps").asLong())
                    .setR(hp.get("r").asDouble())
                    .setWeightLrPower(hp.get("weight_lr_power").asDouble()));
    RunSpec.Builder spec =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(1)
            .setMode(StepMode.STEP_MODE_SYNC)
            .addParameterGroups(g);
    for (String name : order) {
      TensorDescriptor.Builder d = TensorDescriptor.newBuilder().setName(name);
      for (int dim : shape(c.get("initial_params").get(name), 0)) {
        d.addShape(dim);
      }
      spec.addTensors(d);
    }
    return spec.build();
  }

  private static Batch batch(JsonNode c, JsonNode indices, int[] exampleShape) {
    float[] all = floats(c.get("dataset").get("x"));
    JsonNode labels = c.get("dataset").get("labels").get("int_values");
    int size = 1;
    for (int d : exampleShape) {
      size *= d;
    }
    float[] in = new float[indices.size() * size];
    int[] y = new int[indices.size()];
    for (int i = 0; i < indices.size(); i++) {
      int idx = indices.get(i).asInt();
      System.arraycopy(all, idx * size, in, i * size, size);
      y[i] = labels.get(idx).asInt();
    }
    return new Batch(in, y, indices.size());
  }

  private static BatchNormBuffers buffers(JsonNode stats) {
    return BatchNormBuffers.of(
        floats(stats.get("running_mean")),
        floats(stats.get("running_var")),
        stats.get("num_batches_tracked").asLong(),
        0.1);
  }

  private static int[] shape(JsonNode tensor, int from) {
    JsonNode s = tensor.get("shape");
    int[] out = new int[s.size() - from];
    for (int i = from; i < s.size(); i++) {
      out[i - from] = s.get(i).asInt();
    }
    return out;
  }

  private static float[] floats(JsonNode tensor) {
    JsonNode v = tensor.has("values") ? tensor.get("values") : tensor;
    float[] out = new float[v.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) v.get(i).asDouble();
    }
    return out;
  }

  private static float[][] values(JsonNode byName, List<String> order) {
    return order.stream().map(n -> floats(byName.get(n))).toArray(float[][]::new);
  }

  private static Map<String, float[]> floatMap(JsonNode byName, List<String> order) {
    Map<String, float[]> m = new LinkedHashMap<>();
    order.forEach(n -> m.put(n, floats(byName.get(n))));
    return m;
  }

  /** Largest errors relative to max(1, max|ref|) per array, printed; fails past the tolerance. */
  private static final class Report {
    private final List<String> failures = new ArrayList<>();

    void relative(String what, float[] got, float[] ref) {
      double[] g = new double[got.length];
      double[] r = new double[ref.length];
      for (int i = 0; i < got.length; i++) {
        g[i] = got[i];
        r[i] = ref[i];
      }
      relative(what, g, r, TOL);
    }

    void relative(String what, double[] got, double[] ref, double tol) {
      assertEquals(ref.length, got.length, what);
      double scale = 1;
      double err = 0;
      for (int i = 0; i < ref.length; i++) {
        scale = Math.max(scale, Math.abs(ref[i]));
        err = Math.max(err, Math.abs(got[i] - ref[i]));
      }
      double rel = err / scale;
      System.out.printf("golden bn_warmup_cnn %-55s max abs err %.3g (rel %.3g)%n", what, err, rel);
      if (!(rel <= tol)) {
        failures.add(what + ": " + rel + " > " + tol);
      }
    }

    void assertOk() {
      assertTrue(failures.isEmpty(), failures.toString());
    }
  }
}
