package dev.roadless.optimizer.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Moves state between a running optimizer and an {@link OptimizerState}: a deep copy out, and a
 * checked copy in. An import goes into an optimizer freshly built from the same specs, so only the
 * arrays and scalars need checking.
 */
final class StateTransfer {
  private StateTransfer() {}

  static OptimizerState export(
      Variant variant,
      Layout layout,
      TensorBuffers[] buffers,
      GroupRuntime[] groups,
      boolean initialized) {
    List<OptimizerState.GroupState> gs = new ArrayList<>();
    for (GroupRuntime g : groups) {
      gs.add(g.export());
    }
    List<OptimizerState.TensorState> ts = new ArrayList<>();
    for (int t = 0; t < buffers.length; t++) {
      TensorBuffers b = buffers[t];
      ts.add(
          new OptimizerState.TensorState(
              layout.tensors.get(t).name(), b.z.clone(), b.x.clone(), copy(b.v), copy(b.m)));
    }
    return new OptimizerState(variant, layout.tensors, gs, ts, initialized);
  }

  private static float[] copy(float[] a) {
    return a == null ? null : a.clone();
  }

  static void restore(
      OptimizerState state, Layout layout, TensorBuffers[] buffers, GroupRuntime[] groups) {
    List<OptimizerState.TensorState> ts = state.tensorStates();
    if (ts.size() != layout.tensorCount()) {
      throw new IllegalArgumentException(
          "state has " + ts.size() + " tensor states for " + layout.tensorCount() + " tensors");
    }
    long k = state.stepCount();
    for (int g = 0; g < groups.length; g++) {
      OptimizerState.GroupState gs = state.groups().get(g);
      checkScalars(gs, k, state.initialized());
      Schedule s = new Schedule(gs.k(), gs.weightSum(), gs.lrMax(), gs.lrK(), gs.ck(), gs.yBeta());
      groups[g] = new GroupRuntime(gs.spec(), s);
    }
    for (int t = 0; t < ts.size(); t++) {
      OptimizerState.TensorState st = ts.get(t);
      String name = layout.tensors.get(t).name();
      if (!st.name().equals(name)) {
        throw new IllegalArgumentException(
            "tensor state " + t + " is '" + st.name() + "', expected '" + name + "'");
      }
      TensorBuffers b = buffers[t];
      copy(name, "z", st.z(), b.z);
      copy(name, "x", st.x(), b.x);
      copy(name, "v", st.v(), b.v);
      copy(name, "m", st.m(), b.m);
    }
  }

  private static void checkScalars(OptimizerState.GroupState gs, long k, boolean initialized) {
    String name = gs.spec().name();
    if (gs.k() != k || k < 0) {
      throw new IllegalArgumentException(
          "group '"
              + name
              + "' has k="
              + gs.k()
              + " but the first group has k="
              + k
              + "; all groups step together");
    }
    if (k > Schedule.MAX_STEP) {
      throw new IllegalArgumentException(
          "group '" + name + "' has k=" + k + ", beyond the largest step " + Schedule.MAX_STEP);
    }
    if (!initialized && k != 0) {
      throw new IllegalArgumentException("state has " + k + " steps but no initial values");
    }
    if (!(Double.isFinite(gs.weightSum()) && gs.weightSum() >= 0)
        || !(Double.isFinite(gs.lrMax()) && gs.lrMax() >= -1)
        || !(Double.isFinite(gs.lrK()) && gs.lrK() >= 0)
        || !(Double.isFinite(gs.ck()) && gs.ck() >= 0 && gs.ck() <= 1)) {
      throw new IllegalArgumentException("group '" + name + "' has invalid schedule scalars");
    }
    if (k > 0 && !(gs.yBeta() >= 0 && gs.yBeta() < 1)) {
      throw new IllegalArgumentException(
          "group '" + name + "' has yBeta=" + gs.yBeta() + " after " + k + " steps");
    }
  }

  private static void copy(String tensor, String field, float[] src, float[] dst) {
    if ((src == null) != (dst == null)) {
      throw new IllegalArgumentException(
          "tensor '"
              + tensor
              + "': state "
              + (src == null ? "lacks" : "has an unexpected")
              + " array "
              + field
              + " for this variant and its hyperparameters");
    }
    if (src == null) {
      return;
    }
    if (src.length != dst.length) {
      throw new IllegalArgumentException(
          "tensor '"
              + tensor
              + "': state array "
              + field
              + " has "
              + src.length
              + " elements, expected "
              + dst.length);
    }
    if (!Finite.all(src, 0, src.length)) {
      throw new IllegalArgumentException(
          "tensor '" + tensor + "': state array " + field + " holds NaN or infinity");
    }
    System.arraycopy(src, 0, dst, 0, src.length);
  }
}
