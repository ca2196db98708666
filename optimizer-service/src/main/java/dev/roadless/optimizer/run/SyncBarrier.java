package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.ReplicaMean;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The SYNC barrier: each replica's push for the current step, held until the last one arrives, and
 * the mean of all of them formed by {@link ReplicaMean} when it does. Not thread-safe: the run
 * calls it under its lock. A refused completing push leaves every held push as it was.
 */
final class SyncBarrier {
  private final String runId;
  private final List<String> names;
  private final ScheduleFreeOptimizer chunks;
  private final BudgetedSets buffers;
  private final Pushed[] held;
  private final ParameterSink[] sinks;

  SyncBarrier(
      String runId,
      List<String> names,
      int replicas,
      ScheduleFreeOptimizer chunks,
      BudgetedSets buffers) {
    this.runId = runId;
    this.names = names;
    this.chunks = chunks;
    this.buffers = buffers;
    this.held = new Pushed[replicas];
    this.sinks = new ParameterSink[replicas];
  }

  boolean isPending(int replica) {
    return held[replica] != null;
  }

  /** True when every replica but {@code replica} has pushed: its push completes the step. */
  boolean othersPending(int replica) {
    for (int r = 0; r < held.length; r++) {
      if (r != replica && held[r] == null) {
        return false;
      }
    }
    return true;
  }

  List<Integer> pendingReplicas() {
    List<Integer> out = new ArrayList<>();
    for (int r = 0; r < held.length; r++) {
      if (held[r] != null) {
        out.add(r);
      }
    }
    return out;
  }

  /** The held pushes by replica (null where none); the caller does not change the array. */
  Pushed[] held() {
    return held;
  }

  /** Holds a push that does not complete the step. */
  void hold(int replica, Pushed push, ParameterSink sink) {
    held[replica] = push;
    sinks[replica] = sink;
  }

  /**
   * The mean of every held push and the completing one. Bounded arrays cannot overflow, so their
   * mean goes into replica 0's arrays (released with the step); otherwise into arrays of its own,
   * checked block by block, so a refusal leaves every held gradient intact. With one replica the
   * mean is its gradient, checked on arrival.
   *
   * @throws RoadlessException when the mean is not finite; the completing push is not held
   */
  float[][] mean(int replica, Pushed push, ParameterSink sink) {
    held[replica] = push;
    if (held.length == 1 && push.owned() != null) {
      sinks[replica] = sink;
      return push.owned();
    }
    boolean check = false;
    ReplicaMean.Input[] inputs = new ReplicaMean.Input[held.length];
    for (int r = 0; r < held.length; r++) {
      check |= !held[r].bounded();
      inputs[r] = held[r].input();
    }
    float[][] out = check ? buffers.acquire(true) : held[0].owned();
    long bad;
    try {
      bad = ReplicaMean.into(chunks, inputs, out, check);
    } catch (RuntimeException | InternalError e) {
      // InternalError: a fault in a mapped segment. Nothing was kept.
      buffers.release(out);
      held[replica] = null;
      throw e;
    }
    if (bad != ReplicaMean.FINITE) {
      buffers.release(out);
      held[replica] = null;
      throw refusal(bad, replica, inputs);
    }
    sinks[replica] = sink;
    return out;
  }

  /** The sinks of the step that is about to run. */
  ParameterSink[] sinks() {
    return Arrays.stream(sinks).filter(s -> s != null).toArray(ParameterSink[]::new);
  }

  /**
   * After the step (applied or failed): releases every held gradient and {@code mean}, each set
   * once (two pushes summed into one set hold the same one).
   */
  void clear(float[][] mean) {
    Set<float[][]> released = Collections.newSetFromMap(new IdentityHashMap<>());
    for (Pushed p : held) {
      if (p != null && p.owned() != null && released.add(p.owned())) {
        buffers.release(p.owned());
      }
    }
    if (mean != null && released.add(mean)) {
      buffers.release(mean);
    }
    Arrays.fill(held, null);
    Arrays.fill(sinks, null);
  }

  /** Forgets {@code replica}'s held push without releasing its arrays (their owner does). */
  void drop(int replica) {
    held[replica] = null;
    sinks[replica] = null;
  }

  /**
   * Why the mean is not finite at {@code bad}: the completing push's own value (read from its
   * segment just now); a held replica's value, checked when it arrived and written again since; or
   * finite values whose float32 sum overflows.
   */
  private RoadlessException refusal(long bad, int completing, ReplicaMean.Input[] inputs) {
    int t = (int) (bad >>> 32);
    int i = (int) bad;
    float mine = inputs[completing].valueAt(t, i);
    if (!Float.isFinite(mine)) {
      return Refusals.nonFinite(
          ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT, names.get(t), i, mine);
    }
    for (int r = 0; r < inputs.length; r++) {
      float v = inputs[r].valueAt(t, i);
      if (r != completing && !Float.isFinite(v)) {
        return Refusals.pendingChanged(names.get(t), i, v);
      }
    }
    return Refusals.meanOverflows(runId, names.get(t), i);
  }
}
