package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * The run's current y (its TRAIN snapshot) and the arrays behind it, recycled: at 10M parameters y
 * is 40 MB, written anew every step, and allocating (and zeroing) it per step cost more than the
 * step's own writes. A snapshot's arrays come back when its last reader lets go ({@link
 * ParameterSnapshot#release}); at most two sets are kept. Called under the run's lock, except
 * {@link #give}, which a reader on any thread may reach.
 */
final class TrainPublication {
  private final List<String> names;
  private final long[] sizes;
  private final ConcurrentLinkedDeque<float[][]> free = new ConcurrentLinkedDeque<>();
  private ParameterSnapshot current;

  TrainPublication(List<String> names, long[] sizes) {
    this.names = names;
    this.sizes = sizes;
  }

  /** A set of arrays for the next y, recycled or new; the kernel overwrites every element. */
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

  /** Takes back a set nobody reads any more (or that was never published). */
  void give(float[][] y) {
    if (free.size() < 2) {
      free.push(y);
    }
  }

  /** Makes {@code y}, y at {@code step}, current and drops the run's hold on the previous one. */
  void publish(long step, float[][] y) {
    ParameterSnapshot previous = current;
    current = new ParameterSnapshot(step, Sequence.TRAIN, names, y, this::give);
    if (previous != null) {
      previous.release();
    }
  }

  /** The current y, held for the caller until it calls {@link ParameterSnapshot#release}. */
  ParameterSnapshot acquire() {
    // The run holds the current snapshot, so this cannot come too late.
    if (!current.retain()) {
      throw new IllegalStateException("current TRAIN snapshot was released");
    }
    return current;
  }

  /** The current y, never recycled (for callers that do not release). */
  ParameterSnapshot pinned() {
    current.pin();
    return current;
  }

  /** Reads y of the optimizer's current step into recycled arrays and publishes it. */
  void publishFrom(ScheduleFreeOptimizer optimizer) {
    float[][] y = take();
    publish(optimizer.read(Sequence.TRAIN, y), y);
  }

  /** Any sequence of the optimizer's current step, in fresh arrays (never recycled). */
  ParameterSnapshot read(ScheduleFreeOptimizer optimizer, Sequence sequence) {
    float[][] values = new float[names.size()][];
    for (int t = 0; t < values.length; t++) {
      values[t] = new float[(int) sizes[t]];
    }
    long at = optimizer.read(sequence, values);
    return new ParameterSnapshot(at, sequence, names, values);
  }
}
