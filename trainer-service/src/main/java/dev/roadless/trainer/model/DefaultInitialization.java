package dev.roadless.trainer.model;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * PyTorch's default initialisation distribution: Linear and Conv2d weights and biases uniform in
 * {@code ±1/sqrt(fan_in)} (what {@code kaiming_uniform_(a=sqrt(5))} gives), BatchNorm weight 1 and
 * bias 0. Deterministic in the seed; not the values PyTorch itself would draw.
 */
final class DefaultInitialization {
  private DefaultInitialization() {}

  static Map<String, float[]> draw(ModelSpec spec, List<ModelTensor> tensors, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    Map<String, float[]> out = new LinkedHashMap<>();
    for (ModelTensor t : tensors) {
      LayerSpec module = module(spec, t.name());
      float[] v = new float[t.size()];
      if (module instanceof LayerSpec.BatchNorm) {
        Arrays.fill(v, t.name().endsWith(".weight") ? 1f : 0f);
      } else {
        double bound = 1.0 / Math.sqrt(fanIn(module));
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) random.nextDouble(-bound, bound);
        }
      }
      out.put(t.name(), v);
    }
    return out;
  }

  private static LayerSpec module(ModelSpec spec, String tensorName) {
    String name = tensorName.substring(0, tensorName.lastIndexOf('.'));
    return spec.layers().stream()
        .filter(l -> l.name().equals(name))
        .findFirst()
        .orElseThrow(() -> new IllegalStateException("no module for " + tensorName));
  }

  private static double fanIn(LayerSpec module) {
    if (module instanceof LayerSpec.Linear l) {
      return l.in();
    }
    if (module instanceof LayerSpec.Conv2d c) {
      return (double) c.in() * c.kernel() * c.kernel();
    }
    throw new IllegalStateException(module.name() + " has no parameters to initialise");
  }
}
