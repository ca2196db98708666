package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.OptimizerState;
import java.util.Arrays;

/** Whether two optimizer states are the same, scalars and every array bit for bit. */
final class SameState {
  private SameState() {}

  static boolean of(OptimizerState a, OptimizerState b) {
    if (a.variant() != b.variant()
        || a.initialized() != b.initialized()
        || !a.tensors().equals(b.tensors())
        || !a.groups().equals(b.groups())) {
      return false;
    }
    for (int t = 0; t < a.tensorStates().size(); t++) {
      OptimizerState.TensorState x = a.tensorStates().get(t);
      OptimizerState.TensorState y = b.tensorStates().get(t);
      if (!x.name().equals(y.name())
          || !Arrays.equals(x.z(), y.z())
          || !Arrays.equals(x.x(), y.x())
          || !Arrays.equals(x.v(), y.v())
          || !Arrays.equals(x.m(), y.m())) {
        return false;
      }
    }
    return true;
  }
}
