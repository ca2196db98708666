package dev.roadless.trainer.model;

import dev.roadless.trainer.model.LayerSpec.BatchNorm;
import dev.roadless.trainer.model.LayerSpec.Conv2d;
import dev.roadless.trainer.model.LayerSpec.Flatten;
import dev.roadless.trainer.model.LayerSpec.GlobalAvgPool;
import dev.roadless.trainer.model.LayerSpec.Linear;
import dev.roadless.trainer.model.LayerSpec.Relu;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A sequential classifier: its input shape (without the batch dimension: {@code [features]} or
 * {@code [C, H, W]}) and its modules, ending in a {@link Linear} that produces the logits. The loss
 * is always {@code cross_entropy(logits, labels)}, mean over the batch.
 *
 * <p>Build one with {@link #mlp}, {@link #cnn}, or {@link #parse} from PyTorch-like text such as
 * {@code "fc1=Linear(16,32) -> bn=BatchNorm1d(32) -> relu=ReLU -> fc2=Linear(32,4)"} (the {@code
 * architecture} field of the golden files).
 */
public record ModelSpec(int[] inputShape, List<LayerSpec> layers) {
  public static final double DEFAULT_BN_EPS = 1e-5;

  /**
   * Most trainable parameters of a model (2^28: 1 GiB per float32 copy, and a trainer holds a few).
   * Also the most elements of one tensor, and of one example's input or one layer's output.
   */
  public static final long MAX_ELEMENTS = 1L << 28;

  public ModelSpec {
    inputShape = inputShape.clone();
    layers = List.copyOf(layers);
    validate(inputShape, layers);
  }

  /**
   * {@code fc1=Linear(inputs, hidden) -> bn1=BatchNorm1d(hidden) -> relu=ReLU -> fc2=Linear(hidden,
   * classes)}. fc1 has no bias: BatchNorm removes any per-channel shift, so its gradient would be
   * pure float32 noise (see the golden FORMAT.md, section 5).
   */
  public static ModelSpec mlp(int inputs, int hidden, int classes) {
    return new ModelSpec(
        new int[] {inputs},
        List.of(
            new Linear("fc1", inputs, hidden, false),
            new BatchNorm("bn1", hidden, DEFAULT_BN_EPS, 0.1),
            new Relu("relu"),
            new Linear("fc2", hidden, classes, true)));
  }

  /**
   * {@code conv1(3x3, pad 1) -> bn1 -> relu1 -> conv2(3x3, pad 1) -> bn2 -> relu2 -> pool ->
   * flatten -> fc}; the convolutions have no bias (they feed BatchNorm).
   */
  public static ModelSpec cnn(
      int channels, int height, int width, int width1, int width2, int classes) {
    return new ModelSpec(
        new int[] {channels, height, width},
        List.of(
            new Conv2d("conv1", channels, width1, 3, 1, false),
            new BatchNorm("bn1", width1, DEFAULT_BN_EPS, 0.1),
            new Relu("relu1"),
            new Conv2d("conv2", width1, width2, 3, 1, false),
            new BatchNorm("bn2", width2, DEFAULT_BN_EPS, 0.1),
            new Relu("relu2"),
            new GlobalAvgPool("pool"),
            new Flatten("flatten"),
            new Linear("fc", width2, classes, true)));
  }

  /** Parses PyTorch-like architecture text; see {@link ArchitectureParser}. */
  public static ModelSpec parse(String architecture, int... inputShape) {
    return new ModelSpec(inputShape, ArchitectureParser.parse(architecture));
  }

  /** True for image input {@code [C, H, W]}. */
  public boolean isImage() {
    return inputShape.length == 3;
  }

  /** Elements of one example. */
  public int inputSize() {
    return Arrays.stream(inputShape).reduce(1, (a, b) -> a * b);
  }

  /** Number of classes (the last Linear's {@code out}). */
  public int classes() {
    return ((Linear) layers.get(layers.size() - 1)).out();
  }

  @Override
  public int[] inputShape() {
    return inputShape.clone();
  }

  private static void validate(int[] inputShape, List<LayerSpec> layers) {
    if (inputShape.length != 1 && inputShape.length != 3) {
      throw new IllegalArgumentException(
          "input shape must be [features] or [C,H,W], got " + Arrays.toString(inputShape));
    }
    if (layers.isEmpty() || !(layers.get(layers.size() - 1) instanceof Linear)) {
      throw new IllegalArgumentException("the last module must be a Linear producing the logits");
    }
    long input = 1;
    for (int d : inputShape) {
      input *= Math.max(d, 0); // at most three ints: no overflow
    }
    bound("model.input_shape", "the input shape " + Arrays.toString(inputShape), input);
    long parameters = 0;
    Set<String> names = new HashSet<>();
    boolean spatial = inputShape.length == 3;
    int width = inputShape[0];
    int[] size = spatial ? new int[] {inputShape[1], inputShape[2]} : null;
    LayerSpec previous = null;
    for (LayerSpec layer : layers) {
      if (!layer.name().matches("[A-Za-z_][A-Za-z0-9_]*") || !names.add(layer.name())) {
        throw new IllegalArgumentException("bad or repeated module name '" + layer.name() + "'");
      }
      if (layer instanceof Linear l) {
        if (spatial) {
          throw new IllegalArgumentException(
              l.name() + ": Linear after a spatial layer needs a pool");
        }
        expect(width, l.in(), l);
        width = l.out();
        parameters += parameters(l.name(), (long) l.in() * l.out(), l.bias() ? l.out() : 0);
      } else if (layer instanceof Conv2d c) {
        if (!spatial) {
          throw new IllegalArgumentException(c.name() + ": Conv2d needs [N,C,H,W] input");
        }
        expect(width, c.in(), c);
        width = c.out();
        parameters +=
            parameters(
                c.name(),
                (long) c.out() * c.in() * c.kernel() * c.kernel(),
                c.bias() ? c.out() : 0);
        size = new int[] {c.outputSize(size[0]), c.outputSize(size[1])};
        if (size[0] < 1 || size[1] < 1) {
          throw new IllegalArgumentException(c.name() + ": the input is smaller than the kernel");
        }
        bound(
            "model.architecture",
            c.name() + "'s output per example",
            (long) c.out() * size[0] * size[1]);
      } else if (layer instanceof BatchNorm b) {
        expect(width, b.channels(), b);
      } else if (layer instanceof GlobalAvgPool p) {
        if (!spatial) {
          throw new IllegalArgumentException(p.name() + ": pooling needs [N,C,H,W] input");
        }
        spatial = false;
      } else if (layer instanceof Flatten f && !(previous instanceof GlobalAvgPool)) {
        throw new IllegalArgumentException(f.name() + ": Flatten is supported only after a pool");
      }
      previous = layer;
      bound("model.architecture", "the model's parameters", parameters);
    }
  }

  /** A layer's weight and bias element counts, each bounded; their sum. */
  private static long parameters(String layer, long weight, long bias) {
    bound("model.architecture", layer + ".weight", weight);
    return weight + bias;
  }

  private static void bound(String field, String what, long elements) {
    if (elements > MAX_ELEMENTS) {
      throw new ModelTooLargeException(
          field,
          MAX_ELEMENTS,
          what
              + " would have "
              + elements
              + " elements, more than the "
              + MAX_ELEMENTS
              + " a"
              + " trainer holds");
    }
  }

  private static void expect(int have, int want, LayerSpec layer) {
    if (have != want) {
      throw new IllegalArgumentException(
          layer.name() + " expects " + want + " input channels/features, gets " + have);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ModelSpec s
        && Arrays.equals(s.inputShape, inputShape)
        && s.layers.equals(layers);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(inputShape) * 31 + layers.hashCode();
  }

  @Override
  public String toString() {
    return "ModelSpec" + Arrays.toString(inputShape) + layers;
  }
}
