package dev.roadless.optimizer.core;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** How many bytes an optimizer's float32 state takes, known before anything is allocated. */
public final class StateSize {
  private StateSize() {}

  /**
   * Bytes of z, x and every moment the variant and each group's hyperparameters keep. Tensors in no
   * group count with z and x only (such a spec is refused later anyway).
   */
  public static long bytes(Variant variant, List<TensorSpec> tensors, List<GroupSpec> groups) {
    BaseUpdate update = BaseUpdate.of(variant);
    Map<String, Integer> slots = new HashMap<>();
    for (GroupSpec g : groups) {
      int n = 2 + (variant.hasSecondMoment() ? 1 : 0);
      n += update.hasFirstMoment(g.hyperparameters()) ? 1 : 0;
      for (String t : g.tensorNames()) {
        slots.put(t, n);
      }
    }
    long total = 0;
    for (TensorSpec t : tensors) {
      total =
          Math.addExact(total, Math.multiplyExact(4L * slots.getOrDefault(t.name(), 2), t.numel()));
    }
    return total;
  }
}
