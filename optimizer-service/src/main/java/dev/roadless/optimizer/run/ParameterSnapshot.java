package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.core.YReader;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;

/**
 * Every tensor of one sequence at one step. Never changes while anyone may read it, so any number
 * of readers may stream it while training goes on. Read it range by range ({@link #read}), or whole
 * ({@link #values}).
 *
 * <p>A stored snapshot holds its arrays. The run's TRAIN snapshot is a view instead: y is derived
 * from x and z as it is read ({@link YReader}), and never stored while the run stays at its step.
 * Its lifetime is counted: the run holds one reference while it is current, every stream that sends
 * it holds one from {@link Run#acquireParameters} to its last chunk ({@link #release}). Before
 * anything changes the state a view reads, the run detaches it ({@link #detach}): if a reader still
 * holds it, its y is materialized then into a recycled set, and later reads read that set; the set
 * goes back with the last release. A reader's range (under the read lock, so the replicas' streams
 * derive ranges side by side) and a detach (the write lock) exclude each other, so a range is never
 * derived from a half-written step.
 */
public final class ParameterSnapshot {
  private final long step;
  private final Sequence sequence;
  private final List<String> names;
  private final AtomicInteger refs = new AtomicInteger(1);
  private final Consumer<float[][]> recycle;
  private final BudgetedSets sets;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();

  /** The values, or null while this is a view that has not been materialized; set under lock. */
  private volatile float[][] values;

  /** The state this view reads, until it is detached or materialized. Guarded by lock. */
  private YReader reader;

  /**
   * @param step completed steps when the values were taken
   * @param sequence which sequence the values are
   * @param names tensor names in run order
   * @param values one float32 array per tensor, row-major, in run order
   */
  public ParameterSnapshot(long step, Sequence sequence, List<String> names, float[][] values) {
    this(step, sequence, names, values, null);
  }

  /** A stored snapshot whose arrays go to {@code recycle} after the last {@link #release}. */
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
    this.sets = null;
  }

  /**
   * A TRAIN view of the state {@code reader} reads; it materializes into a set from {@code sets}.
   */
  ParameterSnapshot(List<String> names, YReader reader, BudgetedSets sets) {
    this.step = reader.step();
    this.sequence = Sequence.TRAIN;
    this.names = names;
    this.reader = reader;
    this.sets = sets;
    this.recycle = sets::release;
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

  /** Elements of tensor {@code tensor}. */
  public int length(int tensor) {
    float[][] v = values;
    if (v != null) {
      return v[tensor].length;
    }
    lock.readLock().lock();
    try {
      return values != null ? values[tensor].length : reader.length(tensor);
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Writes elements {@code [from, from + n)} of tensor {@code tensor} to {@code dst[at..]}. */
  public void read(int tensor, int from, float[] dst, int at, int n) {
    float[][] v = values;
    if (v == null) {
      lock.readLock().lock();
      try {
        v = values;
        if (v == null) {
          reader.read(tensor, from, dst, at, n);
          return;
        }
      } finally {
        lock.readLock().unlock();
      }
    }
    System.arraycopy(v[tensor], from, dst, at, n);
  }

  /**
   * One float32 array per tensor, in run order. A view is materialized by the first call (into a
   * set of the run's, admitted against the memory budget) and reads that set from then on: for
   * callers that need arrays (tests, a shared-memory segment written whole); streams use {@link
   * #read}.
   */
  public float[][] values() {
    float[][] v = values;
    if (v != null) {
      return v;
    }
    lock.writeLock().lock();
    try {
      if (values == null) {
        values = materialize(null);
      }
      return values;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Called by the run, under its lock, before anything changes the state this view reads: a view
   * that a reader still holds gets its y stored now; none reads the state afterwards.
   *
   * @param fill fills a set from the state in parallel (the kernel's threads), or null
   */
  void detach(Filler fill) {
    lock.writeLock().lock();
    try {
      if (reader != null && values == null && refs.get() > 1) {
        values = materialize(fill);
      }
      reader = null;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Fills a whole set with y from {@code reader}, perhaps on several threads. */
  interface Filler {
    void fill(YReader reader, float[][] set);
  }

  /** Under the write lock, while {@link #reader} is set. */
  private float[][] materialize(Filler fill) {
    float[][] set = sets.acquire(false);
    if (fill != null) {
      fill.fill(reader, set);
    } else {
      for (int t = 0; t < set.length; t++) {
        reader.read(t, 0, set[t], 0, set[t].length);
      }
    }
    reader = null;
    return set;
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

  /** Ends one hold; the last one hands the arrays back for reuse. */
  public void release() {
    int left = refs.decrementAndGet();
    if (left < 0) {
      throw new IllegalStateException("snapshot released more often than held");
    }
    if (left == 0 && recycle != null) {
      float[][] v;
      lock.writeLock().lock();
      try {
        v = values; // kept: a caller may still look at them (and must not rely on them)
        reader = null;
      } finally {
        lock.writeLock().unlock();
      }
      if (v != null) {
        recycle.accept(v);
      }
    }
  }
}
