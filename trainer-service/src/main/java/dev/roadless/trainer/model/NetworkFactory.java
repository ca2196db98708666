package dev.roadless.trainer.model;

import dev.roadless.trainer.model.LayerSpec.BatchNorm;
import dev.roadless.trainer.model.LayerSpec.Conv2d;
import dev.roadless.trainer.model.LayerSpec.Flatten;
import dev.roadless.trainer.model.LayerSpec.GlobalAvgPool;
import dev.roadless.trainer.model.LayerSpec.Linear;
import dev.roadless.trainer.model.LayerSpec.Relu;
import java.util.ArrayList;
import java.util.List;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.LossLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.nn.params.DefaultParamInitializer;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.lossfunctions.impl.LossMCXENT;

/**
 * Translates a {@link ModelSpec} into a DL4J {@link MultiLayerNetwork} (float32, NCHW) and records
 * where each PyTorch tensor lives in it.
 *
 * <p>Module mapping: Linear to {@code DenseLayer} (identity), Conv2d to {@code ConvolutionLayer}
 * (truncate mode with explicit padding, identity), BatchNorm to {@code BatchNormalization} ({@code
 * useLogStd(false)}), ReLU to {@code ActivationLayer}, AdaptiveAvgPool2d(1) to {@code
 * GlobalPoolingLayer(AVG)}; Flatten after the pool is implicit. A parameterless {@code LossLayer}
 * (softmax + multi-class cross entropy) closes the network, so the layer before it outputs the
 * logits.
 *
 * <p>BatchNorm {@code decay} is set to 0 and the DL4J running mean/variance parameters are kept at
 * 0 during training passes. DL4J then writes {@code (global - batch) * (1 - decay)} = the negated
 * batch mean and biased batch variance into those parameters' gradient slots, which {@link Model}
 * reads to update its own PyTorch-convention buffers. DL4J's own running statistics are never used
 * for training; they are loaded from the PyTorch buffers before every evaluation pass.
 */
final class NetworkFactory {
  private static final String W = DefaultParamInitializer.WEIGHT_KEY;
  private static final String B = DefaultParamInitializer.BIAS_KEY;

  private NetworkFactory() {}

  /** A built network and its bindings. */
  record Built(
      MultiLayerNetwork network,
      List<ParameterBinding> parameters,
      List<BatchNormSite> batchNorms,
      int logitsLayer) {}

  /** A BatchNorm module's place in the network. */
  record BatchNormSite(BatchNorm spec, int layerIndex, int spatialSize) {}

  static Built build(ModelSpec spec) {
    Nd4jRuntime.configure();
    NeuralNetConfiguration.ListBuilder list =
        new NeuralNetConfiguration.Builder()
            .dataType(DataType.FLOAT)
            .updater(new NoOp())
            .weightInit(WeightInit.ZERO)
            .trainingWorkspaceMode(WorkspaceMode.ENABLED)
            .inferenceWorkspaceMode(WorkspaceMode.ENABLED)
            .list();
    List<ParameterBinding> params = new ArrayList<>();
    List<BatchNormSite> bns = new ArrayList<>();
    int[] in = spec.inputShape();
    int height = spec.isImage() ? in[1] : 1;
    int width = spec.isImage() ? in[2] : 1;
    int index = 0;
    for (LayerSpec layer : spec.layers()) {
      if (layer instanceof Linear l) {
        list.layer(
            index,
            new DenseLayer.Builder()
                .nIn(l.in())
                .nOut(l.out())
                .hasBias(l.bias())
                .activation(Activation.IDENTITY)
                .build());
        params.add(bind(l.name() + ".weight", new int[] {l.out(), l.in()}, index, W, true));
        if (l.bias()) {
          params.add(bind(l.name() + ".bias", new int[] {l.out()}, index, B, false));
        }
      } else if (layer instanceof Conv2d c) {
        list.layer(
            index,
            new ConvolutionLayer.Builder(c.kernel(), c.kernel())
                .nIn(c.in())
                .nOut(c.out())
                .stride(c.stride(), c.stride())
                .padding(c.padding(), c.padding())
                .convolutionMode(ConvolutionMode.Truncate)
                .dataFormat(CNN2DFormat.NCHW)
                .hasBias(c.bias())
                .activation(Activation.IDENTITY)
                .build());
        int[] w = {c.out(), c.in(), c.kernel(), c.kernel()};
        height = c.outputSize(height);
        width = c.outputSize(width);
        params.add(bind(c.name() + ".weight", w, index, W, false));
        if (c.bias()) {
          params.add(bind(c.name() + ".bias", new int[] {c.out()}, index, B, false));
        }
      } else if (layer instanceof BatchNorm b) {
        list.layer(index, batchNormLayer(b));
        int[] c = {b.channels()};
        params.add(
            bind(b.name() + ".weight", c, index, BatchNormalizationParamInitializer.GAMMA, false));
        params.add(
            bind(b.name() + ".bias", c, index, BatchNormalizationParamInitializer.BETA, false));
        bns.add(new BatchNormSite(b, index, height * width));
      } else if (layer instanceof Relu) {
        list.layer(index, new ActivationLayer.Builder().activation(Activation.RELU).build());
      } else if (layer instanceof GlobalAvgPool) {
        list.layer(
            index,
            new GlobalPoolingLayer.Builder(PoolingType.AVG).collapseDimensions(true).build());
        height = 1;
        width = 1;
      } else if (layer instanceof Flatten) {
        continue; // [N, C] already
      }
      index++;
    }
    int logitsLayer = index - 1;
    list.layer(
        index, new LossLayer.Builder(new LossMCXENT()).activation(Activation.SOFTMAX).build());
    list.setInputType(
        spec.isImage()
            ? InputType.convolutional(in[1], in[2], in[0], CNN2DFormat.NCHW)
            : InputType.feedForward(in[0]));
    MultiLayerConfiguration conf = list.build();
    MultiLayerNetwork net = new MultiLayerNetwork(conf);
    net.init();
    return new Built(net, List.copyOf(params), List.copyOf(bns), logitsLayer);
  }

  /** The DL4J configuration of one BatchNorm module (decay 0: see the class comment). */
  static BatchNormalization batchNormLayer(BatchNorm b) {
    return new BatchNormalization.Builder()
        .nIn(b.channels())
        .nOut(b.channels())
        .eps(b.eps())
        .decay(0.0)
        .useLogStd(false)
        .lockGammaBeta(false)
        .build();
  }

  private static ParameterBinding bind(
      String name, int[] shape, int layer, String key, boolean transposed) {
    return new ParameterBinding(new ModelTensor(name, shape), layer, key, transposed);
  }
}
