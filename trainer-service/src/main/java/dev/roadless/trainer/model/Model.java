package dev.roadless.trainer.model;

import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.trainer.model.NetworkFactory.BatchNormSite;
import dev.roadless.trainer.model.NetworkFactory.Built;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A classifier built from DL4J layers whose forward and backward passes equal PyTorch's, seen
 * through PyTorch's names and layouts ({@code fc1.weight} [out,in], {@code conv1.weight}
 * [out,in,kh,kw], {@code bn1.running_mean}, ...).
 *
 * <p>Training-mode passes ({@link #computeGradient}, {@link #observeBatch}) normalise with batch
 * statistics and update the BatchNorm running buffers with PyTorch semantics (unbiased running
 * variance, momentum 0.1 or cumulative); {@link #evalLogits} normalises with the buffers. The
 * buffers are state of the model, never gradients.
 *
 * <p>Not thread-safe: one model per thread. {@link #copy()} gives an independent model.
 */
public final class Model {
  private final ModelSpec spec;
  private final MultiLayerNetwork net;
  private final List<ParameterBinding> bindings;
  private final List<BatchNormSite> batchNorms;
  private final Map<String, BatchNormBuffers> buffers = new LinkedHashMap<>();
  private final int logitsLayer;
  private final LogitsCapture capture = new LogitsCapture();
  // True while DL4J's own mean/var parameters hold copies of the buffers (for an eval pass);
  // training passes need them at zero (see NetworkFactory).
  private boolean dl4jStatsLoaded;

  private Model(ModelSpec spec, Built built) {
    this.spec = spec;
    this.net = built.network();
    this.bindings = built.parameters();
    this.batchNorms = built.batchNorms();
    this.logitsLayer = built.logitsLayer();
    for (BatchNormSite site : batchNorms) {
      buffers.put(
          site.spec().name(),
          BatchNormBuffers.fresh(site.spec().channels(), site.spec().momentum()));
    }
    net.setListeners(capture);
    dl4jStatsLoaded = true; // DL4J initialises its variance to 1
    zeroDl4jStats();
  }

  /**
   * A model with PyTorch's default initialisation (weights and biases uniform in {@code
   * ±1/sqrt(fan_in)}, BatchNorm weight 1 and bias 0, fresh buffers), drawn from {@code seed}. The
   * values are deterministic in the seed but not those PyTorch would draw.
   */
  public static Model create(ModelSpec spec, long seed) {
    Model m = new Model(spec, NetworkFactory.build(spec));
    m.setParameters(DefaultInitialization.draw(spec, m.trainableTensors(), seed));
    return m;
  }

  public ModelSpec spec() {
    return spec;
  }

  /** The trainable tensors in a fixed order (the order of gradients and of a run spec). */
  public List<ModelTensor> trainableTensors() {
    return bindings.stream().map(ParameterBinding::tensor).toList();
  }

  /**
   * The BatchNorm buffers as PyTorch's state_dict names them: {@code <bn>.running_mean}, {@code
   * <bn>.running_var} ([C]) and {@code <bn>.num_batches_tracked} (scalar, int64).
   */
  public List<ModelTensor> bufferTensors() {
    List<ModelTensor> out = new ArrayList<>();
    for (BatchNormSite s : batchNorms) {
      int[] c = {s.spec().channels()};
      out.add(new ModelTensor(s.spec().name() + ".running_mean", c));
      out.add(new ModelTensor(s.spec().name() + ".running_var", c));
      out.add(new ModelTensor(s.spec().name() + ".num_batches_tracked", new int[0]));
    }
    return out;
  }

  /** Names of the BatchNorm modules, in network order. */
  public List<String> batchNormLayers() {
    return batchNorms.stream().map(s -> s.spec().name()).toList();
  }

  /** Copies of every trainable tensor in PyTorch layout, in {@link #trainableTensors()} order. */
  public Map<String, float[]> parameters() {
    Map<String, float[]> out = new LinkedHashMap<>();
    for (ParameterBinding b : bindings) {
      out.put(b.tensor().name(), b.toTorch(param(b)));
    }
    return out;
  }

  /**
   * Sets trainable tensors from PyTorch-layout values. Any subset may be given.
   *
   * @throws IllegalArgumentException for an unknown name or a wrong element count (nothing is
   *     changed then)
   */
  public void setParameters(Map<String, float[]> values) {
    Map<String, INDArray> converted = new LinkedHashMap<>();
    for (Map.Entry<String, float[]> e : values.entrySet()) {
      ParameterBinding b = binding(e.getKey());
      converted.put(e.getKey(), b.toDl4j(e.getValue(), param(b).shape()));
    }
    for (Map.Entry<String, INDArray> e : converted.entrySet()) {
      param(binding(e.getKey())).assign(e.getValue());
    }
  }

  /** Copies of the BatchNorm buffers by module name. */
  public Map<String, BatchNormBuffers> batchNormBuffers() {
    Map<String, BatchNormBuffers> out = new LinkedHashMap<>();
    buffers.forEach((k, v) -> out.put(k, v.copy()));
    return out;
  }

  /**
   * Replaces the buffers of the named BatchNorm modules (copied). The momentum of the given buffers
   * is what later training passes use.
   */
  public void setBatchNormBuffers(Map<String, BatchNormBuffers> values) {
    for (Map.Entry<String, BatchNormBuffers> e : values.entrySet()) {
      BatchNormBuffers current = buffers.get(e.getKey());
      if (current == null) {
        throw new IllegalArgumentException("no BatchNorm module named " + e.getKey());
      }
      if (e.getValue().channels() != current.channels()) {
        throw new IllegalArgumentException(
            e.getKey()
                + " has "
                + current.channels()
                + " channels, got "
                + e.getValue().channels());
      }
    }
    values.forEach((k, v) -> buffers.put(k, v.copy()));
    zeroDl4jStats();
  }

  /**
   * One training-mode forward and backward pass, as {@code model.train(); loss =
   * cross_entropy(model(x), y); loss.backward()} in PyTorch: returns the loss, the logits and the
   * mean gradient of every trainable tensor, and updates the BatchNorm buffers with the batch
   * statistics.
   *
   * @param inputs {@code n} examples, row-major: {@code [n, features]} or {@code [n, C, H, W]}
   * @param labels {@code n} class indices
   * @param n batch size, at least 2 (BatchNorm needs more than one value per channel)
   */
  public GradientResult computeGradient(float[] inputs, int[] labels, int n) {
    INDArray x = inputArray(inputs, n);
    INDArray y = oneHot(labels, n);
    zeroDl4jStats();
    capture.logits = null;
    net.setInput(x);
    net.setLabels(y);
    net.computeGradientAndScore();
    Gradient g = net.gradient();
    INDArray flat = net.getFlattenedGradients();
    float[] all = GradientReader.bulk(flat);
    Map<String, float[]> grads = new LinkedHashMap<>();
    float scale = 1f / n;
    for (ParameterBinding b : bindings) {
      float[] v = GradientReader.read(b, g.getGradientFor(b.gradientKey()), flat, all);
      for (int i = 0; i < v.length; i++) {
        v[i] *= scale;
      }
      grads.put(b.tensor().name(), v);
    }
    for (BatchNormSite s : batchNorms) {
      // decay 0 and zeroed DL4J stats: the slots hold -mean and -biased variance of the batch.
      String prefix = s.layerIndex() + "_";
      float[] mean =
          GradientReader.readVector(
              g.getGradientFor(prefix + BatchNormalizationParamInitializer.GLOBAL_MEAN), flat, all);
      float[] var =
          GradientReader.readVector(
              g.getGradientFor(prefix + BatchNormalizationParamInitializer.GLOBAL_VAR), flat, all);
      negate(mean);
      negate(var);
      buffers.get(s.spec().name()).update(mean, var, (long) n * s.spatialSize());
    }
    float[] logits = capture.logits;
    net.clear();
    return new GradientResult(crossEntropy(logits, labels, n), logits, grads);
  }

  /**
   * A training-mode forward pass without gradients, as {@code model.train()} under {@code
   * torch.no_grad()}: updates the BatchNorm buffers and returns every BatchNorm module's exact
   * statistics of this batch (count, mean, M2 in double), keyed by module name.
   */
  public Map<String, BatchNormStatistics> observeBatch(float[] inputs, int n) {
    List<INDArray> acts = net.feedForwardToLayer(logitsLayer, inputArray(inputs, n), true);
    Map<String, BatchNormStatistics> out = new LinkedHashMap<>();
    for (BatchNormSite s : batchNorms) {
      INDArray in = acts.get(s.layerIndex()); // the input of layer i is activation i
      int c = s.spec().channels();
      BatchNormStatistics stats = BatchNormStatistics.ofBatch(toFloats(in), n, c, s.spatialSize());
      buffers.get(s.spec().name()).update(stats);
      out.put(s.spec().name(), stats);
    }
    net.clear();
    return Collections.unmodifiableMap(out);
  }

  /** Eval-mode logits {@code [n, classes]}, normalising with the current BatchNorm buffers. */
  public float[] evalLogits(float[] inputs, int n) {
    loadDl4jStats();
    List<INDArray> acts = net.feedForwardToLayer(logitsLayer, inputArray(inputs, n), false);
    float[] logits = toFloats(acts.get(acts.size() - 1));
    net.clear();
    return logits;
  }

  /**
   * Eval-mode logits with the given BatchNorm statistics (as PyTorch buffers, by module name;
   * modules not named use the model's own). The model's buffers are left as they were.
   */
  public float[] evalLogits(float[] inputs, int n, Map<String, BatchNormBuffers> statistics) {
    Map<String, BatchNormBuffers> own = batchNormBuffers();
    setBatchNormBuffers(statistics);
    try {
      return evalLogits(inputs, n);
    } finally {
      setBatchNormBuffers(own);
    }
  }

  /** An independent model with the same spec, parameters and buffers. */
  public Model copy() {
    Model m = new Model(spec, NetworkFactory.build(spec));
    m.setParameters(parameters());
    m.setBatchNormBuffers(batchNormBuffers());
    return m;
  }

  /** The DL4J network, for {@link LayerProfiler}. */
  MultiLayerNetwork network() {
    return net;
  }

  /** {@code cross_entropy(logits, labels)}, mean over the batch; see {@link CrossEntropy}. */
  public static double crossEntropy(float[] logits, int[] labels, int n) {
    return CrossEntropy.mean(logits, labels, n);
  }

  INDArray inputArray(float[] inputs, int n) {
    if (n < 1 || inputs.length != (long) n * spec.inputSize()) {
      throw new IllegalArgumentException(
          "expected " + n + " examples of " + spec.inputSize() + " values, got " + inputs.length);
    }
    int[] s = spec.inputShape();
    long[] shape = spec.isImage() ? new long[] {n, s[0], s[1], s[2]} : new long[] {n, s[0]};
    return Nd4j.create(inputs, shape, 'c');
  }

  INDArray oneHot(int[] labels, int n) {
    if (labels.length != n) {
      throw new IllegalArgumentException("expected " + n + " labels, got " + labels.length);
    }
    int k = spec.classes();
    float[] y = new float[n * k];
    for (int i = 0; i < n; i++) {
      if (labels[i] < 0 || labels[i] >= k) {
        throw new IllegalArgumentException("label " + labels[i] + " outside [0, " + k + ")");
      }
      y[i * k + labels[i]] = 1f;
    }
    return Nd4j.create(y, new long[] {n, k}, 'c');
  }

  private void zeroDl4jStats() {
    if (!dl4jStatsLoaded) {
      return;
    }
    for (BatchNormSite s : batchNorms) {
      Layer l = net.getLayer(s.layerIndex());
      l.getParam(BatchNormalizationParamInitializer.GLOBAL_MEAN).assign(0);
      l.getParam(BatchNormalizationParamInitializer.GLOBAL_VAR).assign(0);
    }
    dl4jStatsLoaded = false;
  }

  private void loadDl4jStats() {
    for (BatchNormSite s : batchNorms) {
      Layer l = net.getLayer(s.layerIndex());
      BatchNormBuffers b = buffers.get(s.spec().name());
      INDArray mean = l.getParam(BatchNormalizationParamInitializer.GLOBAL_MEAN);
      INDArray var = l.getParam(BatchNormalizationParamInitializer.GLOBAL_VAR);
      mean.assign(Nd4j.create(b.runningMean(), mean.shape(), 'c'));
      var.assign(Nd4j.create(b.runningVar(), var.shape(), 'c'));
    }
    dl4jStatsLoaded = true;
  }

  private INDArray param(ParameterBinding b) {
    return net.getLayer(b.layerIndex()).getParam(b.dl4jKey());
  }

  private ParameterBinding binding(String name) {
    for (ParameterBinding b : bindings) {
      if (b.tensor().name().equals(name)) {
        return b;
      }
    }
    throw new IllegalArgumentException("no trainable tensor named " + name);
  }

  private static void negate(float[] v) {
    for (int i = 0; i < v.length; i++) {
      v[i] = -v[i];
    }
  }

  static float[] toFloats(INDArray a) {
    return a.dup('c').data().asFloat();
  }

  /** Keeps the logits of the last training forward pass (the input of the loss layer). */
  private static final class LogitsCapture extends BaseTrainingListener {
    float[] logits;

    @Override
    public void onForwardPass(org.deeplearning4j.nn.api.Model model, List<INDArray> activations) {
      logits = toFloats(activations.get(activations.size() - 1));
    }
  }
}
