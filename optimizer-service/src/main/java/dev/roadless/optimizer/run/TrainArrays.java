package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.Sequence;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * The y arrays of a run's TRAIN snapshots, recycled: at 10M parameters y is 40 MB, written anew
 * every step, and allocating (and zeroing) it per step cost more than the step's own writes. Arrays
 * come back when the last reader of their snapshot lets go ({@link ParameterSnapshot#release}); at
 * most two sets are kept.
 */
final class TrainArrays {
  private final List<String> names;
  private final long[] sizes;
  private final ConcurrentLinkedDeque<float[][]> free = new ConcurrentLinkedDeque<>();

  TrainArrays(List<String> names, long[] sizes) {
    this.names = names;
    this.sizes = sizes;
  }

  /** A set of arrays, recycled or new; the caller overwrites every element. */
  float[][] take() {
    float[][] y = free.poll();
    if (y != null) {
      return y;
    }
    y = new float[names.size()][];
    for (int t = 0; t < y.length; t++) {
      y[t] = new float[(int) sizes[t]];
    }
    return y;
  }

  /** Takes back a set nobody reads any more. */
  void give(float[][] y) {
    if (free.size() < 2) {
      free.push(y);
    }
  }

  /** A TRAIN snapshot over {@code y} whose arrays come back here after its last release. */
  ParameterSnapshot snapshot(long step, float[][] y) {
    return new ParameterSnapshot(step, Sequence.TRAIN, names, y, this::give);
  }
}
