package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.core.YReader;
import java.util.List;

/**
 * The run's current y (its TRAIN snapshot): a view that derives y from x and z as readers encode it
 * ({@link ParameterSnapshot}), so y is never stored while the run stays at its step. Before
 * anything changes the state (a step's commit, the run's close), the run {@link #detach}es it: a
 * view that a lagging reader still holds is materialized then into a recycled y set, which goes
 * back with its last release. Without lagging readers (SYNC training, where every replica has read
 * y before it pushes again) no y set is touched. The sets also serve as the kernel's y output where
 * a push needs y written as the step goes (shared memory). Called under the run's lock.
 */
final class TrainPublication {
  private final List<String> names;
  private final long[] sizes;
  private final MemoryBudget budget;
  private final ScheduleFreeOptimizer optimizer;
  private final BudgetedSets sets;
  private ParameterSnapshot current;

  /**
   * @param budget admits the y sets beyond the {@link #RESERVED} one and every EVAL or BASE read
   */
  TrainPublication(
      List<String> names, long[] sizes, MemoryBudget budget, ScheduleFreeOptimizer optimizer) {
    this.names = names;
    this.sizes = sizes;
    this.budget = budget;
    this.optimizer = optimizer;
    this.sets = new BudgetedSets(sizes, 2, RESERVED, budget, "a y set");
  }

  /**
   * y sets the run's own admission covers: one, so that a detach (or a shared-memory step's y
   * output) is never refused. Sets beyond it overdraw the budget rather than fail a step.
   */
  static final int RESERVED = 1;

  /** A set for a step's y output (shared-memory sinks), recycled or new; never refused. */
  float[][] take() {
    return sets.acquire(false);
  }

  /** Takes back a set from {@link #take}. */
  void give(float[][] y) {
    sets.release(y);
  }

  /** The run is gone: its extra sets' bytes go back to the budget. */
  void close() {
    sets.close();
  }

  /** Makes y of the optimizer's current step the current TRAIN snapshot (a view of the state). */
  void publish() {
    detach();
    current = new ParameterSnapshot(names, optimizer.yReader(), sets);
  }

  /**
   * Before the state changes: the current view stops reading it (materialized if a reader holds it)
   * and the run lets go of it. {@link #publish} makes the next one.
   */
  void detach() {
    ParameterSnapshot previous = current;
    current = null;
    if (previous != null) {
      previous.detach(this::fill);
      previous.release();
    }
  }

  private void fill(YReader reader, float[][] set) {
    optimizer.forEachChunk((t, from, to) -> reader.read(t, from, set[t], from, to - from));
  }

  /** The current y, held for the caller until it calls {@link ParameterSnapshot#release}. */
  ParameterSnapshot acquire() {
    // The run holds the current snapshot, so this cannot come too late.
    if (current == null || !current.retain()) {
      throw new IllegalStateException("no current TRAIN snapshot");
    }
    return current;
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
