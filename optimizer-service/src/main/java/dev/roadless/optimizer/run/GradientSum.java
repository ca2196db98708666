package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.Finite;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.function.IntConsumer;
import java.util.function.LongSupplier;

/**
 * SYNC with one or two replicas: the step's one gradient set G. Every chunk of every replica's push
 * goes into G as it arrives, after it was checked finite: the first replica's chunk for an element
 * writes it, the other's adds its value and divides by 2. {@code (a + b) / 2} in float32 is exactly
 * {@link dev.roadless.optimizer.core.ReplicaMean}'s mean of two replicas, and float addition is
 * commutative, so G does not depend on which replica came first or how the pushes were chunked.
 * With one replica G is the gradient. (With three or more the float32 sum must follow replica
 * order, which arrival order does not: those runs keep a set per replica.)
 *
 * <p>A sum cannot be undone exactly, so a push refused after its chunks touched G (a non-finite
 * chunk, a mean that overflows, a bad chunk, a stream that went away) voids the step's
 * accumulation: G is dropped, and the other replica's push, if its chunks touched G, is answered
 * PUSH_VOIDED (its client pushes the same gradient again). The optimizer state is untouched: it is
 * only written when the step commits with G whole.
 *
 * <p>Not thread-safe: every method runs under the run's lock ({@link #lock}).
 */
final class GradientSum {
  final Object lock;
  private final String runId;
  private final List<String> names;
  private final BudgetedSets buffers;
  private final int replicas;
  private final LongSupplier runStep;
  private final IntConsumer dropHeld;
  private final List<NavigableMap<Long, Long>> once = new ArrayList<>();

  /** Per replica: its push that is not accepted or left yet (only one takes part at a time). */
  private final SummedPush[] live;

  /** Per replica: its push whose chunks are in G, or null. */
  private final SummedPush[] parts;

  private float[][] g;

  /** G went to the barrier with an accepted push, which releases it with the step. */
  private boolean held;

  private long epoch;

  /**
   * @param dropHeld forgets a replica's held push (the barrier's entry and its fingerprint)
   */
  GradientSum(
      Object lock,
      String runId,
      List<String> names,
      BudgetedSets buffers,
      int replicas,
      LongSupplier runStep,
      IntConsumer dropHeld) {
    this.lock = lock;
    this.runId = runId;
    this.names = names;
    this.buffers = buffers;
    this.replicas = replicas;
    this.runStep = runStep;
    this.dropHeld = dropHeld;
    this.live = new SummedPush[replicas];
    this.parts = new SummedPush[replicas];
    for (int t = 0; t < names.size(); t++) {
      once.add(new TreeMap<>());
    }
  }

  /** A push of {@code replica} for the run's step; null when that replica has one in progress. */
  SummedPush join(int replica, long step, SummedPush.Commit commit) {
    if (live[replica] != null) {
      return null;
    }
    live[replica] = new SummedPush(this, replica, step, commit);
    return live[replica];
  }

  float[] add(SummedPush p, int t, int element, float[] src, int n) {
    touch(p);
    float[] out = g[t];
    if (replicas == 1) {
      System.arraycopy(src, 0, out, element, n);
      return out;
    }
    int end = element + n;
    List<long[]> twice = takeOnce(t, element, end);
    int at = element;
    for (long[] r : twice) {
      write(out, at, (int) r[0], src, element);
      if (!addHalf(out, (int) r[0], (int) r[1], src, element)) {
        int bad = (int) r[0];
        while (Float.isFinite(out[bad])) {
          bad++;
        }
        voidStep(null, "the mean overflows");
        throw Refusals.meanOverflows(runId, names.get(t), bad);
      }
      at = (int) r[1];
    }
    write(out, at, end, src, element);
    return out;
  }

  /** Makes {@code p} part of the current accumulation (G taken now if it has none). */
  void touch(SummedPush p) {
    checkCurrent(p);
    if (p.epoch == epoch) {
      return;
    }
    if (g == null) {
      g = buffers.acquire(true); // may refuse (memory budget): nothing was touched
    }
    p.epoch = epoch;
    parts[p.replica] = p;
  }

  /** Throws PUSH_VOIDED unless {@code p} may still write into G. */
  void checkCurrent(SummedPush p) {
    if (p.voidedWhy == null && p.step != runStep.getAsLong()) {
      p.voidedWhy = "step " + p.step + " was applied without it";
    }
    if (p.voidedWhy != null) {
      throw Refusals.pushVoided(runId, p.replica, p.step, p.voidedWhy);
    }
  }

  /**
   * {@code p} is accepted: G (every element of its push is in) goes to the barrier with it. True
   * when every replica's push is in G, which is then their mean.
   */
  float[][] accept(SummedPush p) {
    touch(p);
    p.done = true;
    live[p.replica] = null;
    held = true;
    return g;
  }

  /** True when every replica's accepted push of the current accumulation is in G. */
  boolean complete() {
    for (SummedPush p : parts) {
      if (p == null || !p.done) {
        return false;
      }
    }
    return true;
  }

  /** True when a push of {@code replica} that is not accepted yet wrote into G. */
  boolean touchedBy(int replica) {
    return parts[replica] != null && !parts[replica].done;
  }

  /** True when {@code p} is the only push whose chunks are in G. */
  boolean alone(SummedPush p) {
    for (SummedPush q : parts) {
      if (q != null && q != p) {
        return false;
      }
    }
    return true;
  }

  void leave(SummedPush p) {
    if (live[p.replica] == p) {
      live[p.replica] = null;
    }
    if (!p.done && p.epoch == epoch && parts[p.replica] == p && p.voidedWhy == null) {
      voidStep(p, "replica " + p.replica + "'s push was refused or its stream went away");
    }
  }

  /**
   * Voids the accumulation: every push in G but {@code cause} learns it (an accepted one is dropped
   * from the barrier and answered PUSH_VOIDED), and G is given back.
   */
  void voidStep(SummedPush cause, String why) {
    for (int r = 0; r < replicas; r++) {
      SummedPush q = parts[r];
      if (q == null) {
        continue;
      }
      q.voidedWhy = why;
      if (q != cause && q.done) {
        dropHeld.accept(r);
        q.voided.completeExceptionally(Refusals.pushVoided(runId, r, q.step, why));
      }
    }
    buffers.release(g);
    reset();
  }

  /**
   * The step was applied (or failed): G, if accepted with a push, was released by the barrier;
   * pushes still writing into it are void.
   */
  void stepDone() {
    for (SummedPush q : parts) {
      if (q != null && !q.done) {
        q.voidedWhy = "step " + q.step + " was applied without it";
      }
    }
    if (!held) {
      buffers.release(g);
    }
    reset();
  }

  private void reset() {
    g = null;
    held = false;
    epoch++;
    Arrays.fill(parts, null);
    for (NavigableMap<Long, Long> m : once) {
      m.clear();
    }
  }

  /**
   * The ranges of {@code [from, to)} the other replica already wrote (in order), no longer written
   * once; the rest of {@code [from, to)} is recorded as written once.
   */
  private List<long[]> takeOnce(int t, long from, long to) {
    NavigableMap<Long, Long> m = once.get(t);
    List<long[]> twice = new ArrayList<>();
    Map.Entry<Long, Long> before = m.lowerEntry(from);
    if (before != null && before.getValue() > from) {
      m.put(before.getKey(), from);
      twice.add(new long[] {from, Math.min(before.getValue(), to)});
      if (before.getValue() > to) {
        m.put(to, before.getValue());
      }
    }
    // Copied out first: a TreeMap's entries are its nodes, which a removal may rewrite.
    NavigableMap<Long, Long> inside = m.subMap(from, true, to, false);
    List<long[]> ranges = new ArrayList<>();
    inside.forEach((k, v) -> ranges.add(new long[] {k, v}));
    inside.clear();
    for (long[] e : ranges) {
      twice.add(new long[] {e[0], Math.min(e[1], to)});
      if (e[1] > to) {
        m.put(to, e[1]);
      }
    }
    long at = from;
    for (long[] r : twice) {
      if (r[0] > at) {
        m.put(at, r[0]);
      }
      at = r[1];
    }
    if (at < to) {
      m.put(at, to);
    }
    return twice;
  }

  private static void write(float[] out, int from, int to, float[] src, int base) {
    if (to > from) {
      System.arraycopy(src, from - base, out, from, to - from);
    }
  }

  /** {@code out[i] = (out[i] + src[i - base]) / 2} for i in [from, to); whether all are finite. */
  private static boolean addHalf(float[] out, int from, int to, float[] src, int base) {
    int shift = base;
    for (int i = from; i < to; i++) {
      out[i] = (out[i] + src[i - shift]) / 2f;
    }
    return Finite.all(out, from, to);
  }
}
