package dev.roadless.trainer.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.layers.IOutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Where a training pass spends its time: drives a model's DL4J layers one at a time (training mode,
 * no workspaces) and reports the median forward and backward time of each. For diagnosis only; it
 * does not touch the model's BatchNorm buffers.
 */
public final class LayerProfiler {
  private LayerProfiler() {}

  /** Median times of one layer, in milliseconds. */
  public record LayerTiming(int index, String layer, double forwardMs, double backwardMs) {}

  public static List<LayerTiming> profile(
      Model model, float[] inputs, int[] labels, int n, int warmup, int iterations) {
    MultiLayerNetwork net = model.network();
    if (net.getFlattenedGradients() == null) {
      net.initGradientsView();
    }
    Layer[] layers = net.getLayers();
    LayerWorkspaceMgr mgr = LayerWorkspaceMgr.noWorkspaces();
    INDArray x0 = model.inputArray(inputs, n);
    INDArray y = model.oneHot(labels, n);
    double[][] fwd = new double[layers.length][iterations];
    double[][] bwd = new double[layers.length][iterations];
    for (int it = -warmup; it < iterations; it++) {
      INDArray x = x0;
      for (int i = 0; i < layers.length - 1; i++) {
        long t0 = System.nanoTime();
        x = layers[i].activate(x, true, mgr);
        Nd4j.getExecutioner().commit();
        record(fwd[i], it, t0);
      }
      Layer out = layers[layers.length - 1];
      ((IOutputLayer) out).setLabels(y);
      out.setInput(x, mgr);
      INDArray eps = null;
      for (int i = layers.length - 1; i >= 0; i--) {
        long t0 = System.nanoTime();
        eps = layers[i].backpropGradient(eps, mgr).getSecond();
        Nd4j.getExecutioner().commit();
        record(bwd[i], it, t0);
      }
    }
    net.clear();
    List<LayerTiming> out = new ArrayList<>();
    for (int i = 0; i < layers.length; i++) {
      String name = layers[i].conf().getLayer().getClass().getSimpleName();
      out.add(new LayerTiming(i, name, median(fwd[i]), median(bwd[i])));
    }
    return out;
  }

  private static void record(double[] slot, int it, long t0) {
    if (it >= 0) {
      slot[it] = (System.nanoTime() - t0) / 1e6;
    }
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }
}
