package dev.roadless.optimizer.core;

import java.util.Map;

/**
 * Checks of caller-supplied arrays, done completely before anything changes, so a refused call
 * leaves the optimizer exactly as it was.
 */
final class Inputs {
  private Inputs() {}

  /**
   * Orders the replicas' gradients by tensor index.
   *
   * @throws IllegalArgumentException for a missing or unknown tensor, a wrong length, no replicas,
   *     or a replica count that differs between tensors
   */
  static float[][][] gradients(Layout layout, Map<String, float[][]> grads) {
    if (grads == null) {
      throw new IllegalArgumentException("gradients must not be null");
    }
    float[][][] out = new float[layout.tensorCount()][][];
    int replicas = -1;
    for (Map.Entry<String, float[][]> e : grads.entrySet()) {
      int t = known(layout, e.getKey(), "gradient");
      float[][] reps = e.getValue();
      if (reps == null || reps.length == 0) {
        throw new IllegalArgumentException("tensor '" + e.getKey() + "' has no replica gradients");
      }
      if (replicas >= 0 && reps.length != replicas) {
        throw new IllegalArgumentException(
            "every tensor needs the same number of replica gradients: tensor '"
                + e.getKey()
                + "' has "
                + reps.length
                + ", another has "
                + replicas);
      }
      replicas = reps.length;
      for (int r = 0; r < reps.length; r++) {
        checkLength(layout, t, reps[r], "gradient of replica " + r + " for");
      }
      out[t] = reps;
    }
    requireAll(layout, out, "gradient");
    return out;
  }

  /**
   * Orders caller arrays by tensor index; absent tensors are null.
   *
   * @param all whether every tensor must be present
   */
  static float[][] arrays(Layout layout, Map<String, float[]> arrays, boolean all, String role) {
    if (arrays == null) {
      throw new IllegalArgumentException(role + " map must not be null");
    }
    float[][] out = new float[layout.tensorCount()][];
    for (Map.Entry<String, float[]> e : arrays.entrySet()) {
      int t = known(layout, e.getKey(), role);
      checkLength(layout, t, e.getValue(), role + " for");
      out[t] = e.getValue();
    }
    if (all) {
      requireAll(layout, out, role);
    }
    return out;
  }

  /**
   * Checks arrays already in tensor order: one per tensor, each with its exact element count.
   *
   * @throws IllegalArgumentException for a wrong count, a null or a mis-sized array
   */
  static float[][] ordered(Layout layout, float[][] arrays, String role) {
    if (arrays == null || arrays.length != layout.tensorCount()) {
      throw new IllegalArgumentException(
          role + " needs one array per tensor (" + layout.tensorCount() + ")");
    }
    for (int t = 0; t < arrays.length; t++) {
      checkLength(layout, t, arrays[t], role + " for");
    }
    return arrays;
  }

  /**
   * Throws {@link NonFiniteGradientException} for the first NaN or infinity, in tensor order, or
   * for the first element where finite replicas' float32 sum overflows (their mean would be
   * infinite).
   */
  static void requireFinite(Layout layout, float[][][] grads, ChunkExecutor executor) {
    boolean[] bad = new boolean[layout.chunkCount()];
    executor.run(
        layout.chunkCount(),
        (w, c) ->
            bad[c] =
                !Finite.sumAll(
                    grads[layout.chunkTensor[c]], layout.chunkFrom[c], layout.chunkTo[c]));
    for (int c = 0; c < bad.length; c++) {
      if (bad[c]) {
        reportFirstNonFinite(layout, grads, layout.chunkTensor[c]);
      }
    }
  }

  /** Throws for the first non-finite value of a fully given array set (initial values). */
  static void requireFinite(Layout layout, float[][] values, String role) {
    for (int t = 0; t < values.length; t++) {
      float[] a = values[t];
      if (!Finite.all(a, 0, a.length)) {
        for (int i = 0; i < a.length; i++) {
          if (!Float.isFinite(a[i])) {
            throw new IllegalArgumentException(
                role
                    + " of tensor '"
                    + layout.tensors.get(t).name()
                    + "' is not finite at element "
                    + i
                    + " ("
                    + a[i]
                    + ")");
          }
        }
      }
    }
  }

  private static void reportFirstNonFinite(Layout layout, float[][][] grads, int t) {
    float[][] reps = grads[t];
    for (int r = 0; r < reps.length; r++) {
      for (int i = 0; i < reps[r].length; i++) {
        if (!Float.isFinite(reps[r][i])) {
          throw new NonFiniteGradientException(layout.tensors.get(t).name(), r, i, reps[r][i]);
        }
      }
    }
    for (int i = 0; i < reps[0].length; i++) {
      if (!Float.isFinite(Finite.sumAt(reps, i))) {
        throw NonFiniteGradientException.meanOverflows(
            layout.tensors.get(t).name(), reps.length, i);
      }
    }
  }

  private static int known(Layout layout, String name, String role) {
    int t = name == null ? -1 : layout.tensor(name);
    if (t < 0) {
      throw new IllegalArgumentException(role + " given for unknown tensor '" + name + "'");
    }
    return t;
  }

  private static void checkLength(Layout layout, int t, float[] a, String role) {
    String name = layout.tensors.get(t).name();
    if (a == null) {
      throw new IllegalArgumentException(role + " tensor '" + name + "' is null");
    }
    if (a.length != layout.numel[t]) {
      throw new IllegalArgumentException(
          role
              + " tensor '"
              + name
              + "' has "
              + a.length
              + " elements, expected "
              + layout.numel[t]
              + " (shape "
              + layout.tensors.get(t)
              + ")");
    }
  }

  private static void requireAll(Layout layout, Object[] byTensor, String role) {
    for (int t = 0; t < byTensor.length; t++) {
      if (byTensor[t] == null) {
        throw new IllegalArgumentException(
            role + " missing for tensor '" + layout.tensors.get(t).name() + "'");
      }
    }
  }
}
