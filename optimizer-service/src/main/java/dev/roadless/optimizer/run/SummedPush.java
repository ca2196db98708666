package dev.roadless.optimizer.run;

import java.util.concurrent.CompletableFuture;

/**
 * One replica's chunked push summed straight into its SYNC step's one gradient set ({@link
 * GradientSum}): the stream hands over each chunk once it is decoded and checked finite, then
 * commits the push or leaves. Every method takes the run's lock.
 */
public final class SummedPush {
  final GradientSum sum;
  final int replica;
  final long step;
  final CompletableFuture<Long> voided = new CompletableFuture<>();
  private final Commit commit;

  /** How the run takes a push whose every chunk arrived (under its lock). */
  interface Commit {
    PushResult apply(SummedPush push, boolean bounded, long print);
  }

  /** The accumulation this push's chunks went into; -1 until its first chunk. */
  long epoch = -1;

  /** Accepted by the run (held for the step or completing it). */
  boolean done;

  /** Why its accumulation was voided, or null. */
  String voidedWhy;

  SummedPush(GradientSum sum, int replica, long step, Commit commit) {
    this.sum = sum;
    this.commit = commit;
    this.replica = replica;
    this.step = step;
  }

  /**
   * Elements {@code [element, element + n)} of tensor {@code tensor}, checked finite, are in {@code
   * values[0, n)}: written into the step's set, or added to the other replica's values there and
   * divided by 2.
   *
   * @throws dev.roadless.common.error.RoadlessException PUSH_VOIDED when the step's accumulation
   *     was voided since this push's first chunk; NON_FINITE_GRADIENT when the mean overflows (the
   *     step's accumulation is then voided)
   * @return the tensor's array in the step's set
   */
  public float[] add(int tensor, int element, float[] values, int n) {
    synchronized (sum.lock) {
      return sum.add(this, tensor, element, values, n);
    }
  }

  /**
   * Every element arrived (its stream proved the coverage): the push is held for the step, or
   * completes it.
   *
   * @param bounded every element passed {@link dev.roadless.optimizer.core.Finite#bounded}
   * @param print the gradient's fingerprint
   * @throws dev.roadless.common.error.RoadlessException PUSH_VOIDED when the step's accumulation
   *     was voided meanwhile, or the run's own refusals (deleted, FAILED)
   */
  public PushResult commit(boolean bounded, long print) {
    synchronized (sum.lock) {
      return commit.apply(this, bounded, print);
    }
  }

  /**
   * The push was refused or its stream went away before it was accepted: if its chunks touched the
   * step's set, the step's accumulation is voided (the other replica's push, if it touched it too,
   * is answered PUSH_VOIDED).
   */
  public void leave() {
    synchronized (sum.lock) {
      sum.leave(this);
    }
  }

  /**
   * Fails with PUSH_VOIDED if this accepted push is voided before its step is applied; never
   * completes otherwise.
   */
  public CompletableFuture<Long> voided() {
    return voided;
  }

  /** The replica that pushes. */
  public int replica() {
    return replica;
  }

  /** The step this push is for. */
  public long step() {
    return step;
  }
}
