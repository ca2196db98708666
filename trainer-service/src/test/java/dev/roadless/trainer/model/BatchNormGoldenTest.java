package dev.roadless.trainer.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.testing.GoldenCases;
import dev.roadless.trainer.golden.ErrorReport;
import dev.roadless.trainer.golden.Tensors;
import java.util.stream.Stream;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.LossLayer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/**
 * {@code kind: "batchnorm"} (FORMAT.md section 3): the DL4J BatchNormalization layer exactly as
 * {@link NetworkFactory} configures it, plus {@link BatchNormBuffers}, against a standalone PyTorch
 * BatchNorm1d/2d over several training batches (momentum 0.1 and cumulative), one backward pass,
 * and an eval forward. The batch statistics come from the layer's running-statistics gradient
 * slots, the mechanism {@link Model} uses.
 *
 * <p>Sizes come from the case ({@code num_features}, each batch's input shape, which batch carries
 * the backward record). Tolerance ({@link ErrorReport}, from the stated rtol 1e-5, atol 1e-6):
 * {@code |a-b| <= 1e-6 * max(1, max|ref|) + 1e-5 * |ref|} per element; {@code num_batches_tracked}
 * exact. (This suite used {@code 1e-6 * max(max|ref|, 1)} per array, fitted to FORMAT.md section
 * 6's 1.6e-7 measured on the visible set; it is tighter than the stated tolerance for large values,
 * e.g. a gradient element of 5 would be allowed 5e-6 instead of 5.5e-5.)
 */
public class BatchNormGoldenTest {
  private static final LayerWorkspaceMgr NO_WS = LayerWorkspaceMgr.noWorkspaces();

  @TestFactory
  Stream<DynamicTest> batchnorm_everyCase_matchesPyTorch() {
    return GoldenCases.tests(BatchNormGoldenTest::check, "batchnorm");
  }

  /** Runs one case and fails on any array over its tolerance. */
  public static void check(JsonNode c) {
    int channels = c.get("num_features").asInt();
    Double momentum = c.get("momentum").isNull() ? null : c.get("momentum").asDouble();
    LayerSpec.BatchNorm spec =
        new LayerSpec.BatchNorm("bn", channels, c.get("eps").asDouble(), momentum);
    int[] shape = asRank2or4(Tensors.shape(c.get("batches").get(0).get("input")));
    Layer layer = standalone(spec, shape);
    layer.getParam(BatchNormalizationParamInitializer.GAMMA).assign(row(c.get("weight")));
    layer.getParam(BatchNormalizationParamInitializer.BETA).assign(row(c.get("bias")));
    BatchNormBuffers buffers =
        BatchNormBuffers.of(
            Tensors.floats(c.get("initial_running_mean")),
            Tensors.floats(c.get("initial_running_var")),
            c.get("initial_num_batches_tracked").asLong(),
            momentum);
    ErrorReport report = new ErrorReport(c.get("case").asText());
    for (JsonNode batch : c.get("batches")) {
      String b = "batch" + batch.get("index").asInt() + " ";
      INDArray x = array(batch.get("input"));
      long perChannel = x.length() / channels;
      layer.getParam(BatchNormalizationParamInitializer.GLOBAL_MEAN).assign(0);
      layer.getParam(BatchNormalizationParamInitializer.GLOBAL_VAR).assign(0);
      INDArray out = layer.activate(x, true, NO_WS);
      report.allclose(b + "output", Model.toFloats(out), floats(batch, "output"));

      JsonNode bw = batch.get("backward");
      INDArray gradOut = bw != null ? array(bw.get("grad_output")) : Nd4j.zerosLike(out);
      Pair<Gradient, INDArray> g = layer.backpropGradient(gradOut, NO_WS);
      float[] mean =
          negate(g.getFirst().getGradientFor(BatchNormalizationParamInitializer.GLOBAL_MEAN));
      float[] var =
          negate(g.getFirst().getGradientFor(BatchNormalizationParamInitializer.GLOBAL_VAR));
      report.allclose(b + "saved_mean", mean, floats(batch, "saved_mean"));
      report.allclose(b + "batch_var_biased", var, floats(batch, "batch_var_biased"));
      if (bw != null) {
        report.allclose(b + "grad_input", Model.toFloats(g.getSecond()), floats(bw, "grad_input"));
        report.allclose(
            b + "grad_weight",
            Model.toFloats(g.getFirst().getGradientFor(BatchNormalizationParamInitializer.GAMMA)),
            floats(bw, "grad_weight"));
        report.allclose(
            b + "grad_bias",
            Model.toFloats(g.getFirst().getGradientFor(BatchNormalizationParamInitializer.BETA)),
            floats(bw, "grad_bias"));
      }
      buffers.update(mean, var, perChannel);
      report.allclose(
          b + "running_mean", buffers.runningMean(), floats(batch, "running_mean_after"));
      report.allclose(b + "running_var", buffers.runningVar(), floats(batch, "running_var_after"));
      report.exact(
          b + "num_batches_tracked",
          buffers.numBatchesTracked(),
          batch.get("num_batches_tracked_after").asLong());
    }
    JsonNode ev = c.get("eval_forward");
    layer
        .getParam(BatchNormalizationParamInitializer.GLOBAL_MEAN)
        .assign(row(buffers.runningMean()));
    layer.getParam(BatchNormalizationParamInitializer.GLOBAL_VAR).assign(row(buffers.runningVar()));
    INDArray evalOut = layer.activate(array(ev.get("input")), false, NO_WS);
    report.allclose("eval output", Model.toFloats(evalOut), floats(ev, "output"));
    report.assertOk();
  }

  /** The module's DL4J layer, instantiated through a one-layer network. */
  private static Layer standalone(LayerSpec.BatchNorm spec, int[] shape) {
    var conf =
        new NeuralNetConfiguration.Builder()
            .dataType(DataType.FLOAT)
            .list()
            .layer(NetworkFactory.batchNormLayer(spec))
            .layer(
                new LossLayer.Builder(LossFunctions.LossFunction.MSE)
                    .activation(Activation.IDENTITY)
                    .build())
            .setInputType(
                shape.length == 2
                    ? InputType.feedForward(shape[1])
                    : InputType.convolutional(shape[2], shape[3], shape[1], CNN2DFormat.NCHW))
            .build();
    MultiLayerNetwork net = new MultiLayerNetwork(conf);
    net.init();
    net.initGradientsView();
    assertEquals(0.0, NetworkFactory.batchNormLayer(spec).getDecay());
    return net.getLayer(0);
  }

  /**
   * BatchNorm1d on [N, C, L] normalises over N and L: the same as BatchNorm2d on [N, C, L, 1],
   * which is how DL4J takes it.
   */
  private static int[] asRank2or4(int[] s) {
    return s.length == 3 ? new int[] {s[0], s[1], s[2], 1} : s;
  }

  private static INDArray array(JsonNode tensor) {
    int[] s = asRank2or4(Tensors.shape(tensor));
    long[] shape = new long[s.length];
    for (int i = 0; i < s.length; i++) {
      shape[i] = s[i];
    }
    return Nd4j.create(Tensors.floats(tensor), shape, 'c');
  }

  private static INDArray row(JsonNode tensor) {
    return row(Tensors.floats(tensor));
  }

  private static INDArray row(float[] v) {
    return Nd4j.create(v, new long[] {1, v.length}, 'c');
  }

  private static float[] floats(JsonNode parent, String field) {
    return Tensors.floats(parent.get(field));
  }

  private static float[] negate(INDArray a) {
    float[] v = Model.toFloats(a);
    for (int i = 0; i < v.length; i++) {
      v[i] = -v[i];
    }
    return v;
  }
}
