package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import java.util.List;

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
  private final MemoryBudget budget;
  private final BudgetedSets sets;
  private ParameterSnapshot current;

  /**
   * @param budget admits the y sets beyond the {@link #RESERVED} ones and every EVAL or BASE read
   */
  TrainPublication(List<String> names, long[] sizes, MemoryBudget budget) {
    this.names = names;
    this.sizes = sizes;
    this.budget = budget;
    this.sets = new BudgetedSets(sizes, 2, RESERVED, budget, "a y set");
  }

  /** y sets the run's own admission covers: the published one and the next. */
  static final int RESERVED = 2;

  /**
   * A set of arrays for the next y, recycled or new; the kernel overwrites every element. Never
   * refused: a set beyond the reserved two (slow readers hold the others) overdraws the budget.
   */
  float[][] take() {
    return sets.acquire(false);
  }

  /** Takes back a set nobody reads any more (or that was never published). */
  void give(float[][] y) {
    sets.release(y);
  }

  /** The run is gone: its extra sets' bytes go back to the budget. */
  void close() {
    sets.close();
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

  /** Reads y of the optimizer's current step into recycled arrays and publishes it. */
  void publishFrom(ScheduleFreeOptimizer optimizer) {
    float[][] y = take();
    publish(optimizer.read(Sequence.TRAIN, y), y);
  }

  /**
   * Any sequence of the optimizer's current step, in fresh arrays admitted against the budget and
   * given back with the snapshot's last release.
   */
  ParameterSnapshot read(ScheduleFreeOptimizer optimizer, Sequence sequence) {
    MemoryBudget.Grant grant =
        budget.admit(BudgetedSets.bytesPerSet(sizes), "a copy of " + sequence + " parameters");
    float[][] values = new float[names.size()][];
    for (int t = 0; t < values.length; t++) {
      values[t] = new float[(int) sizes[t]];
    }
    long at = optimizer.read(sequence, values);
    return new ParameterSnapshot(at, sequence, names, values, v -> grant.close());
  }
}
