package dev.roadless.trainer.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.trainer.model.GradientResult;
import dev.roadless.trainer.model.LayerSpec;
import dev.roadless.trainer.model.Model;
import dev.roadless.trainer.model.ModelSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * {@code gradcheck_mlp} and {@code gradcheck_cnn} (FORMAT.md section 4): one training-mode forward
 * and backward of a model built from the file's {@code architecture}.
 *
 * <p>Tolerances (FORMAT.md section 6 measured at most 1.6e-7 for BatchNorm and 2.5e-7 relative to
 * the largest gradient for network gradients; DL4J's float32 operation order differs from
 * PyTorch's, so we allow about 4x that):
 *
 * <ul>
 *   <li>logits, loss, running statistics: {@code 1e-6 * max(max|ref|, 1)} per array;
 *   <li>every gradient, including the bias in front of BatchNorm (pure rounding noise, about 1e-8):
 *       absolute {@code 1e-6 * (largest |gradient| of the case)};
 *   <li>{@code num_batches_tracked}: exact.
 * </ul>
 */
class GradcheckGoldenTest {
  static final double REL_TOL = 1e-6;
  static final double GRAD_TOL = 5e-6;

  @TestFactory
  Stream<DynamicTest> gradcheck_everyCase_matchesPyTorch() {
    return Stream.concat(
            GoldenFiles.ofKind("gradcheck_mlp").stream(),
            GoldenFiles.ofKind("gradcheck_cnn").stream())
        .map(c -> DynamicTest.dynamicTest(c.get("case").asText(), () -> run(c)));
  }

  /**
   * The model of the file's {@code architecture}; {@code bn_eps} and {@code bn_momentum} (null:
   * cumulative) are authoritative for every BatchNorm module.
   */
  static Model modelFor(JsonNode c, int[] inputShape) {
    ModelSpec parsed = ModelSpec.parse(c.get("architecture").asText(), inputShape);
    double eps = c.get("bn_eps").asDouble();
    Double momentum = c.get("bn_momentum").isNull() ? null : c.get("bn_momentum").asDouble();
    List<LayerSpec> layers = new ArrayList<>();
    for (LayerSpec l : parsed.layers()) {
      layers.add(
          l instanceof LayerSpec.BatchNorm b
              ? new LayerSpec.BatchNorm(b.name(), b.channels(), eps, momentum)
              : l);
    }
    return Model.create(new ModelSpec(inputShape, layers), 0);
  }

  static Map<String, BatchNormBuffers> buffers(JsonNode node, Model model) {
    Map<String, BatchNormBuffers> out = new LinkedHashMap<>();
    for (String bn : model.batchNormLayers()) {
      out.put(
          bn,
          BatchNormBuffers.of(
              Tensors.floats(node.get(bn + ".running_mean")),
              Tensors.floats(node.get(bn + ".running_var")),
              node.get(bn + ".num_batches_tracked").asLong(),
              model.batchNormBuffers().get(bn).momentum()));
    }
    return out;
  }

  private static void run(JsonNode c) {
    int[] inShape = Tensors.shape(c.get("input"));
    int n = inShape[0];
    Model model = modelFor(c, Arrays.copyOfRange(inShape, 1, inShape.length));
    Map<String, float[]> params = Tensors.floatMap(c.get("params"));
    assertEquals(params.keySet(), Tensors.floatMap(c.get("grads")).keySet());
    assertEquals(
        model.trainableTensors().stream().map(t -> t.name()).toList(),
        params.keySet().stream().toList(),
        "trainable tensors in named_parameters() order");
    model.setParameters(params);
    model.setBatchNormBuffers(buffers(c.get("buffers_before"), model));

    GradientResult r =
        model.computeGradient(Tensors.floats(c.get("input")), Tensors.ints(c.get("labels")), n);

    ErrorReport report = new ErrorReport(c.get("case").asText());
    report.relative("logits", r.logits(), Tensors.floats(c.get("logits")), REL_TOL);
    report.scalar("loss", r.loss(), c.get("loss").asDouble(), REL_TOL);
    Map<String, float[]> grads = Tensors.floatMap(c.get("grads"));
    double largest = grads.values().stream().mapToDouble(ErrorReport::maxAbs).max().orElse(1);
    assertEquals(grads.keySet(), r.gradients().keySet());
    grads.forEach(
        (name, ref) ->
            report.absolute(
                "grad " + name, r.gradients().get(name), ref, GRAD_TOL * largest, largest));
    JsonNode after = c.get("buffers_after");
    model
        .batchNormBuffers()
        .forEach(
            (bn, b) -> {
              report.relative(
                  bn + ".running_mean",
                  b.runningMean(),
                  Tensors.floats(after.get(bn + ".running_mean")),
                  REL_TOL);
              report.relative(
                  bn + ".running_var",
                  b.runningVar(),
                  Tensors.floats(after.get(bn + ".running_var")),
                  REL_TOL);
              report.exact(
                  bn + ".num_batches_tracked",
                  b.numBatchesTracked(),
                  after.get(bn + ".num_batches_tracked").asLong());
            });
    report.assertOk();
  }
}
