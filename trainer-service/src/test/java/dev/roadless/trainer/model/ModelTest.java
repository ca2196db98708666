package dev.roadless.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.Mnist;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ModelTest {
  @Test
  void trainableTensors_mlp_havePyTorchNamesAndLayouts() {
    Model m = Model.create(ModelSpec.mlp(784, 32, 10), 1);
    assertEquals(
        "[fc1.weight[32, 784], bn1.weight[32], bn1.bias[32], fc2.weight[10, 32], fc2.bias[10]]",
        m.trainableTensors().toString());
    assertEquals(
        "[bn1.running_mean[32], bn1.running_var[32], bn1.num_batches_tracked[]]",
        m.bufferTensors().toString());
  }

  @Test
  void trainableTensors_cnn_havePyTorchNamesAndLayouts() {
    Model m = Model.create(ModelSpec.cnn(1, 28, 28, 8, 16, 10), 1);
    assertEquals(
        "[conv1.weight[8, 1, 3, 3], bn1.weight[8], bn1.bias[8], conv2.weight[16, 8, 3, 3],"
            + " bn2.weight[16], bn2.bias[16], fc.weight[10, 16], fc.bias[10]]",
        m.trainableTensors().toString());
    assertEquals(List.of("bn1", "bn2"), m.batchNormLayers());
  }

  @Test
  void setParameters_roundTripsInPyTorchLayout() {
    Model m = Model.create(ModelSpec.mlp(6, 4, 3), 1);
    float[] w = new float[4 * 6];
    for (int i = 0; i < w.length; i++) {
      w[i] = i; // row-major [out=4, in=6]
    }
    m.setParameters(Map.of("fc1.weight", w));
    assertArrayEquals(w, m.parameters().get("fc1.weight"));
  }

  @Test
  void setParameters_badInput_isRefusedAndChangesNothing() {
    Model m = Model.create(ModelSpec.mlp(6, 4, 3), 1);
    Map<String, float[]> before = m.parameters();
    assertThrows(
        IllegalArgumentException.class,
        () -> m.setParameters(Map.of("fc2.bias", new float[3], "fc9.weight", new float[1])));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            m.setParameters(Map.of("fc2.bias", new float[] {1, 2, 3}, "fc2.weight", new float[5])));
    m.parameters().forEach((k, v) -> assertArrayEquals(before.get(k), v, k));
    assertThrows(
        IllegalArgumentException.class,
        () -> m.setParameters(Map.of("bn1.running_mean", new float[4])),
        "buffers are not trainable tensors");
  }

  @Test
  void computeGradient_returnsTrainableTensorsOnly_andUpdatesBuffers() {
    Model m = Model.create(ModelSpec.cnn(1, 28, 28, 4, 8, 10), 3);
    Batch b = Mnist.train().range(0, 16);
    GradientResult r = m.computeGradient(b.inputs(), b.labels(), b.size());
    assertEquals(
        m.trainableTensors().stream().map(ModelTensor::name).toList(),
        List.copyOf(r.gradients().keySet()));
    assertEquals(16 * 10, r.logits().length);
    assertEquals(Model.crossEntropy(r.logits(), b.labels(), 16), r.loss());
    BatchNormBuffers bn1 = m.batchNormBuffers().get("bn1");
    assertEquals(1, bn1.numBatchesTracked());
    assertFalse(Arrays.equals(new float[4], bn1.runningMean()));
  }

  @Test
  void copy_isIndependent() {
    Model m = Model.create(ModelSpec.mlp(784, 16, 10), 4);
    Model c = m.copy();
    Batch b = Mnist.train().range(0, 8);
    c.computeGradient(b.inputs(), b.labels(), b.size());
    c.setParameters(Map.of("fc2.bias", new float[] {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}));
    assertEquals(0, m.batchNormBuffers().get("bn1").numBatchesTracked());
    assertArrayEquals(new float[10], c.copy().parameters().get("fc2.bias"), 2f);
    assertFalse(Arrays.equals(m.parameters().get("fc2.bias"), c.parameters().get("fc2.bias")));
  }

  @Test
  void evalLogits_followTheBuffers() {
    Model m = Model.create(ModelSpec.mlp(784, 16, 10), 5);
    Batch b = Mnist.holdout().range(0, 4);
    float[] fresh = m.evalLogits(b.inputs(), 4);
    BatchNormBuffers shifted = BatchNormBuffers.fresh(16, 0.1);
    shifted.update(new float[16], new float[16], 2); // var -> 0.9
    m.setBatchNormBuffers(Map.of("bn1", shifted));
    assertFalse(Arrays.equals(fresh, m.evalLogits(b.inputs(), 4)));
    // Eval passes leave the buffers alone.
    assertEquals(1, m.batchNormBuffers().get("bn1").numBatchesTracked());
    // Given statistics apply to that call only.
    float[] withFresh = m.evalLogits(b.inputs(), 4, Map.of("bn1", BatchNormBuffers.fresh(16, 0.1)));
    assertArrayEquals(fresh, withFresh);
    assertEquals(1, m.batchNormBuffers().get("bn1").numBatchesTracked());
  }

  @Test
  void cnn_onCpu_usesTheOneDnnHelpers() {
    // Performance configuration, not numerics: without the helpers the convolutions take the
    // ~10x slower Java im2col path (see Nd4jRuntime and org.nd4j.nativeblas.Nd4jCpu).
    Model m = Model.create(ModelSpec.cnn(1, 28, 28, 4, 8, 10), 1);
    var conv = (org.deeplearning4j.nn.layers.convolution.ConvolutionLayer) m.network().getLayer(0);
    assertEquals(
        "MKLDNNConvHelper",
        conv.getHelper() == null ? "none" : conv.getHelper().getClass().getSimpleName());
  }

  @Test
  void evalLogits_strideTwoConvolution_matchesADirectCrossCorrelation() {
    ModelSpec spec =
        ModelSpec.parse(
            "c=Conv2d(1,1,3,stride=2,padding=1,bias=False) -> p=AdaptiveAvgPool2d(1)"
                + " -> flatten -> fc=Linear(1,1)",
            1,
            5,
            5);
    Model m = Model.create(spec, 1);
    float[] kernel = {0.5f, -1f, 2f, 0.25f, 1f, -0.75f, 1.5f, 0.125f, -2f};
    m.setParameters(
        Map.of("c.weight", kernel, "fc.weight", new float[] {1f}, "fc.bias", new float[] {0f}));
    float[] image = new float[25];
    for (int i = 0; i < image.length; i++) {
      image[i] = (i * 7 % 11) / 4f - 1f;
    }
    // Output 3x3 at stride 2 with one pixel of zero padding: (5 + 2 - 3) / 2 + 1.
    double sum = 0;
    for (int oy = 0; oy < 3; oy++) {
      for (int ox = 0; ox < 3; ox++) {
        for (int ky = 0; ky < 3; ky++) {
          for (int kx = 0; kx < 3; kx++) {
            int y = 2 * oy - 1 + ky;
            int x = 2 * ox - 1 + kx;
            if (y >= 0 && y < 5 && x >= 0 && x < 5) {
              sum += kernel[3 * ky + kx] * image[5 * y + x];
            }
          }
        }
      }
    }
    assertEquals(sum / 9, m.evalLogits(image, 1)[0], 1e-5);
  }

  @Test
  void modelSpec_parse_rejectsWhatItCannotBuild() {
    assertThrows(
        IllegalArgumentException.class, () -> ModelSpec.parse("fc=Linear(4,2,bias=Maybe)", 4));
    assertThrows(
        IllegalArgumentException.class, () -> ModelSpec.parse("fc=Linear(4,2) -> r=ReLU", 4));
    assertThrows(IllegalArgumentException.class, () -> ModelSpec.parse("fc=Linear(5,2)", 4));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            ModelSpec.parse(
                "c=Conv2d(1,2,5,stride=2) -> p=AdaptiveAvgPool2d(1) -> fc=Linear(2,2)", 1, 4, 4));
    assertThrows(
        IllegalArgumentException.class,
        () -> ModelSpec.parse("fc=Linear(4,2) -> fc=Linear(2,2)", 4));
    assertThrows(
        IllegalArgumentException.class,
        () -> ModelSpec.parse("b=BatchNorm1d(4, affine=False) -> fc=Linear(4,2)", 4));
  }

  @Test
  void modelSpec_parse_readsPyTorchDefaults() {
    ModelSpec s =
        ModelSpec.parse(
            "conv=Conv2d(1,4,kernel_size=3,padding=1) -> bn=BatchNorm2d(4, momentum=None)"
                + " -> relu=ReLU -> pool=AdaptiveAvgPool2d(1) -> flatten -> fc=Linear(4,3)",
            1,
            6,
            6);
    assertEquals(new LayerSpec.Conv2d("conv", 1, 4, 3, 1, true), s.layers().get(0));
    assertEquals(new LayerSpec.BatchNorm("bn", 4, 1e-5, null), s.layers().get(1));
    assertEquals(new LayerSpec.Flatten("flatten"), s.layers().get(4));
    assertEquals(3, s.classes());
  }
}
