package dev.roadless.trainer.model;

/**
 * One PyTorch-style module of a sequential model. {@code name} is the module's attribute name,
 * which prefixes its tensors' names ({@code fc1.weight}, {@code bn1.running_mean}).
 */
public sealed interface LayerSpec {
  String name();

  /** {@code Linear(in, out, bias)}: weight [out, in], bias [out]. */
  record Linear(String name, int in, int out, boolean bias) implements LayerSpec {
    public Linear {
      positive("in", in);
      positive("out", out);
    }
  }

  /**
   * {@code Conv2d(in, out, kernel_size=k, stride=s, padding=p, bias)}: cross-correlation, weight
   * [out, in, k, k], bias [out]; output size {@code floor((H + 2p - k) / s) + 1}, as in PyTorch.
   */
  record Conv2d(String name, int in, int out, int kernel, int stride, int padding, boolean bias)
      implements LayerSpec {
    public Conv2d {
      positive("in", in);
      positive("out", out);
      positive("kernel", kernel);
      positive("stride", stride);
      if (padding < 0) {
        throw new IllegalArgumentException("padding must be >= 0, got " + padding);
      }
    }

    /** Stride 1. */
    public Conv2d(String name, int in, int out, int kernel, int padding, boolean bias) {
      this(name, in, out, kernel, 1, padding, bias);
    }

    /** The output's height or width for an input of {@code size}. */
    int outputSize(int size) {
      return Math.floorDiv(size + 2 * padding - kernel, stride) + 1;
    }
  }

  /**
   * {@code BatchNorm1d(channels)} on [N,C] or {@code BatchNorm2d(channels)} on [N,C,H,W]: affine,
   * with running statistics. {@code momentum} null means the cumulative average.
   */
  record BatchNorm(String name, int channels, double eps, Double momentum) implements LayerSpec {
    public BatchNorm {
      positive("channels", channels);
      if (!(eps > 0)) {
        throw new IllegalArgumentException("eps must be > 0, got " + eps);
      }
      if (momentum != null && !(momentum > 0 && momentum <= 1)) {
        throw new IllegalArgumentException("momentum must be in (0, 1] or null, got " + momentum);
      }
    }
  }

  /** {@code ReLU()}. */
  record Relu(String name) implements LayerSpec {}

  /** {@code AdaptiveAvgPool2d(1)}: mean over H and W. */
  record GlobalAvgPool(String name) implements LayerSpec {}

  /** {@code Flatten()}; allowed only right after a global pool, where it is a no-op. */
  record Flatten(String name) implements LayerSpec {}

  private static void positive(String what, int v) {
    if (v <= 0) {
      throw new IllegalArgumentException(what + " must be > 0, got " + v);
    }
  }
}
