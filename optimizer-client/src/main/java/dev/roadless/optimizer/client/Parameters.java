package dev.roadless.optimizer.client;

import java.util.List;

/**
 * Tensors of one sequence at one step, as received.
 *
 * @param step the run's completed steps the values belong to
 * @param names tensor names, in the order received
 * @param values float32 values, row-major, one array per name
 */
public record Parameters(long step, List<String> names, float[][] values) {
  /** The values of one tensor. */
  public float[] get(String name) {
    int i = names.indexOf(name);
    if (i < 0) {
      throw new IllegalArgumentException("no tensor '" + name + "' in " + names);
    }
    return values[i];
  }
}
