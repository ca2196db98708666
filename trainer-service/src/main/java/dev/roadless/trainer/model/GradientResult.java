package dev.roadless.trainer.model;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One training-mode forward and backward pass.
 *
 * @param loss {@code cross_entropy(logits, labels)}, mean over the batch, computed in double from
 *     the float32 logits
 * @param logits {@code [n, classes]} row-major
 * @param gradients d loss / d parameter, the mean over the batch, for every trainable tensor in
 *     {@link Model#trainableTensors()} order and PyTorch layout; BatchNorm running statistics are
 *     buffers, never gradients, and do not appear
 */
public record GradientResult(double loss, float[] logits, Map<String, float[]> gradients) {
  public GradientResult {
    gradients = Collections.unmodifiableMap(new LinkedHashMap<>(gradients));
  }
}
