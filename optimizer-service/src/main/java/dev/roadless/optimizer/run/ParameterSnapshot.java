package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.Sequence;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Every tensor of one sequence at one step. Never mutated while anyone may read it, so any number
 * of readers may stream it while training goes on.
 *
 * <p>The run recycles the arrays of its TRAIN snapshots (y is 40 MB at 10M parameters, rewritten
 * every step), so their lifetime is counted: the run holds one reference while the snapshot is
 * current, every stream that sends it holds one from {@link Run#acquireParameters} until its last
 * chunk is written ({@link #release}). The arrays are reused only after the last release. A
 * snapshot handed out by {@link Run#parameters} is pinned and never reused.
 */
public final class ParameterSnapshot {
  private final long step;
  private final Sequence sequence;
  private final List<String> names;
  private final float[][] values;
  private final Consumer<float[][]> recycle;
  private final AtomicInteger refs = new AtomicInteger(1);
  private volatile boolean pinned;

  /**
   * @param step completed steps when the values were taken
   * @param sequence which sequence the values are
   * @param names tensor names in run order
   * @param values one float32 array per tensor, row-major, in run order
   */
  public ParameterSnapshot(long step, Sequence sequence, List<String> names, float[][] values) {
    this(step, sequence, names, values, null);
  }

  /** A snapshot whose arrays go to {@code recycle} after the last {@link #release}. */
  ParameterSnapshot(
      long step,
      Sequence sequence,
      List<String> names,
      float[][] values,
      Consumer<float[][]> recycle) {
    this.step = step;
    this.sequence = sequence;
    this.names = names;
    this.values = values;
    this.recycle = recycle;
  }

  public long step() {
    return step;
  }

  public Sequence sequence() {
    return sequence;
  }

  public List<String> names() {
    return names;
  }

  public float[][] values() {
    return values;
  }

  /** One more reader; false if the snapshot was already released for good. */
  boolean retain() {
    while (true) {
      int r = refs.get();
      if (r == 0) {
        return false;
      }
      if (refs.compareAndSet(r, r + 1)) {
        return true;
      }
    }
  }

  /** Never recycle these arrays: someone holds them without counting. */
  void pin() {
    pinned = true;
  }

  /** Ends one hold; the last one hands the arrays back for reuse (unless pinned). */
  public void release() {
    int left = refs.decrementAndGet();
    if (left < 0) {
      throw new IllegalStateException("snapshot released more often than held");
    }
    if (left == 0 && !pinned && recycle != null) {
      recycle.accept(values);
    }
  }
}
