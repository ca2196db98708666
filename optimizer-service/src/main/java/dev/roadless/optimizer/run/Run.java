package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.ReplicaMean;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.proto.common.v1.ErrorReason;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.UnaryOperator;

/**
 * One training run on the server: the Schedule-Free state and the protocol around it. A push is
 * checked once ({@link #checkPush}, before its data arrives); then {@link #push} hands it to the
 * {@link SyncBarrier} or the {@link AsyncLedger}, a step runs the kernel into recycled y arrays
 * ({@link TrainPublication}) and wakes the {@link StepWaiters}. Thread-safe; every mutation happens
 * under one lock and either completes or changes nothing.
 */
public final class Run {
  private final String id;
  private final RunConfig config;
  private final List<String> names;
  private final long[] sizes;
  private final ScheduleFreeOptimizer optimizer;
  private final Object lock = new Object();
  private final GradientBuffers buffers;
  private final SyncBarrier barrier;
  private final AsyncLedger ledger;
  private final StepWaiters waiters = new StepWaiters();
  private final RefusalCounts refusals = new RefusalCounts();
  private final TrainPublication train;

  private byte[] initialDigest;
  private long step;

  Run(String id, RunConfig config, ScheduleFreeOptimizer optimizer, byte[] initialDigest) {
    this.id = id;
    this.config = config;
    this.names = config.names();
    this.sizes = config.sizes();
    this.optimizer = optimizer;
    if (!optimizer.tensors().equals(config.tensors())) {
      throw new IllegalStateException("the optimizer's tensors are not the configuration's");
    }
    this.buffers = new GradientBuffers(sizes, config.replicas() + 1);
    this.barrier = new SyncBarrier(id, names, config.replicas(), optimizer, buffers);
    this.ledger = new AsyncLedger(id, config.maxStaleness());
    this.train = new TrainPublication(names, sizes);
    this.initialDigest = initialDigest;
    this.step = optimizer.stepCount();
    if (initialDigest != null) {
      train.publishFrom(optimizer);
    }
  }

  public String id() {
    return id;
  }

  /** The configuration, every default filled in. */
  public RunConfig config() {
    return config;
  }

  public List<String> tensorNames() {
    return names;
  }

  public long[] tensorSizes() {
    return sizes.clone();
  }

  public ScheduleFreeOptimizer optimizer() {
    return optimizer;
  }

  public long step() {
    synchronized (lock) {
      return step;
    }
  }

  public boolean initialized() {
    synchronized (lock) {
      return initialDigest != null;
    }
  }

  /**
   * Stores the initial values ({@code values[tensor]}, checked finite) once. Repeating the
   * identical upload is a no-op (returns false); a different one is refused.
   */
  public boolean setInitialValues(float[][] values) {
    byte[] digest = Digests.of(names, values);
    synchronized (lock) {
      if (initialDigest != null) {
        if (Arrays.equals(initialDigest, digest)) {
          return false;
        }
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_INITIAL_VALUES_CONFLICT,
                "run '" + id + "' already has different initial values")
            .with("run_id", id)
            .build();
      }
      optimizer.setInitialValues(values);
      initialDigest = digest;
      train.publishFrom(optimizer);
      return true;
    }
  }

  /**
   * Gradient arrays for one push, recycled. Hand them to {@link #push}, which owns them from then
   * on, or give them back with {@link #releaseBuffers} if the push fails before.
   */
  public float[][] acquireBuffers() {
    return buffers.acquire();
  }

  /** Returns arrays from {@link #acquireBuffers} (null is ignored). */
  public void releaseBuffers(float[][] arrays) {
    buffers.release(arrays);
  }

  /**
   * The one check of a push, made on its header before its data arrives: the replica exists, the
   * run has its initial values and the step is not in the future. None of this can change back
   * (steps only grow), so {@link #push} does not repeat it.
   */
  public void checkPush(int replica, long pushStep) {
    checkReplica(replica);
    synchronized (lock) {
      requireInitialized();
      if (pushStep > step) {
        throw Refusals.stepInFuture(id, pushStep, step);
      }
    }
  }

  /** Throws REPLICA_OUT_OF_RANGE unless {@code 0 <= replica < replicas}. */
  public void checkReplica(int replica) {
    if (replica < 0 || replica >= config.replicas()) {
      throw Refusals.replicaOutOfRange(id, replica, config.replicas());
    }
  }

  /**
   * Takes one replica's gradient computed at y_{pushStep}, in arrays from {@link #acquireBuffers}
   * whose every element was checked finite at the edge (as the chunks arrived).
   *
   * @param bounded every element passed {@link dev.roadless.optimizer.core.Finite#bounded}
   * @param sink sees y of the step this push takes part in (may be null)
   */
  public PushResult push(
      int replica, long pushStep, float[][] gradient, boolean bounded, ParameterSink sink) {
    return push(replica, pushStep, Pushed.arrays(gradient, bounded), sink);
  }

  /**
   * Takes one replica's gradient where it lies (shared memory). SYNC with one or two replicas: the
   * push that completes a step reads it once, into the mean; an earlier push is only checked in
   * place, outside the lock, and stays pending where it is. Otherwise it is read (a checked copy)
   * first, outside the lock, and pushed as arrays.
   */
  public PushResult push(int replica, long pushStep, SharedGradient gradient, ParameterSink sink) {
    if (config.mode() == RunConfig.Mode.SYNC && config.replicas() <= 2) {
      synchronized (lock) {
        PushResult done = duplicateOrComplete(replica, pushStep, gradient, sink);
        if (done != null) {
          return done;
        }
      }
      long bad = gradient.checkInPlace();
      if (bad != ReplicaMean.FINITE) {
        throw nonFinite(bad, gradient);
      }
      synchronized (lock) {
        PushResult done = duplicateOrComplete(replica, pushStep, gradient, sink);
        if (done != null) {
          return done; // the other replica's push arrived meanwhile
        }
        barrier.hold(replica, Pushed.shared(gradient), sink);
        return new PushResult(false, pushStep, pushStep, step, false);
      }
    }
    float[][] copy = buffers.acquire();
    long bad;
    try {
      bad = ReplicaMean.into(optimizer, new ReplicaMean.Input[] {gradient}, copy, true);
    } catch (RuntimeException | InternalError e) {
      buffers.release(copy);
      throw e;
    }
    if (bad != ReplicaMean.FINITE) {
      buffers.release(copy);
      throw nonFinite(bad, gradient);
    }
    return push(replica, pushStep, Pushed.arrays(copy, false), sink);
  }

  /** Under the lock: a duplicate's answer, or the step this push completes, or null. */
  private PushResult duplicateOrComplete(
      int replica, long pushStep, SharedGradient gradient, ParameterSink sink) {
    if (pushStep < step || barrier.isPending(replica) || barrier.othersPending(replica)) {
      return pushSync(replica, pushStep, Pushed.shared(gradient), sink);
    }
    return null;
  }

  private RoadlessException nonFinite(long bad, ReplicaMean.Input gradient) {
    int t = (int) (bad >>> 32);
    int i = (int) bad;
    return Refusals.nonFinite(
        ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT, names.get(t), i, gradient.valueAt(t, i));
  }

  private PushResult push(int replica, long pushStep, Pushed push, ParameterSink sink) {
    synchronized (lock) {
      return config.mode() == RunConfig.Mode.ASYNC
          ? pushAsync(replica, pushStep, push, sink)
          : pushSync(replica, pushStep, push, sink);
    }
  }

  private PushResult pushSync(int replica, long pushStep, Pushed push, ParameterSink sink) {
    if (pushStep < step) {
      // Every replica contributed to every completed SYNC step: this is a re-send.
      buffers.release(push.owned());
      return new PushResult(true, pushStep, pushStep, step, true);
    }
    if (barrier.isPending(replica)) {
      buffers.release(push.owned());
      return new PushResult(false, pushStep, pushStep, step, true);
    }
    if (!barrier.othersPending(replica)) {
      barrier.hold(replica, push, sink);
      return new PushResult(false, pushStep, pushStep, step, false);
    }
    float[][] mean;
    try {
      mean = barrier.mean(replica, push, sink);
    } catch (RuntimeException e) {
      buffers.release(push.owned());
      throw e;
    }
    try {
      applyStep(mean, barrier.sinks());
    } finally {
      barrier.clear(mean);
    }
    return new PushResult(true, pushStep, pushStep, step, false);
  }

  private PushResult pushAsync(int replica, long pushStep, Pushed push, ParameterSink sink) {
    PushResult earlier = ledger.earlier(replica, pushStep);
    if (earlier != null) {
      buffers.release(push.owned());
      return earlier.asDuplicate(step);
    }
    try {
      ledger.checkFresh(pushStep, step);
    } catch (RuntimeException e) {
      buffers.release(push.owned());
      throw e;
    }
    long appliedAs = step;
    try {
      applyStep(push.owned(), sink == null ? new ParameterSink[0] : new ParameterSink[] {sink});
    } finally {
      buffers.release(push.owned());
    }
    PushResult result = new PushResult(true, pushStep, appliedAs, step, false);
    ledger.applied(replica, result);
    return result;
  }

  /** Under the lock: one step with {@code gradient}, y into recycled arrays and the sinks. */
  private void applyStep(float[][] gradient, ParameterSink[] sinks) {
    // The fused pass writes every element of y, so recycled arrays need no clearing.
    float[][] y = train.take();
    try {
      step = optimizer.stepFiniteGradients(gradient, y, sinks);
    } catch (RuntimeException e) {
      train.give(y); // nothing was published; the arrays are still ours
      throw e;
    }
    train.publish(step, y);
    for (ParameterSink s : sinks) {
      try {
        s.written(step);
      } catch (RuntimeException e) {
        // the sink's own business; the step stands
      }
    }
    long now = step;
    waiters.reached(now).forEach(f -> f.complete(now));
  }

  /**
   * Every tensor of a sequence, all from one step. A TRAIN snapshot returned here is never
   * recycled; streams should use {@link #acquireParameters} instead.
   */
  public ParameterSnapshot parameters(Sequence sequence) {
    synchronized (lock) {
      requireInitialized();
      return sequence == Sequence.TRAIN ? train.pinned() : train.read(optimizer, sequence);
    }
  }

  /**
   * Every tensor of a sequence, all from one step, held for the caller until it calls {@link
   * ParameterSnapshot#release} (once, when it no longer reads the arrays).
   */
  public ParameterSnapshot acquireParameters(Sequence sequence) {
    synchronized (lock) {
      requireInitialized();
      return sequence == Sequence.TRAIN ? train.acquire() : train.read(optimizer, sequence);
    }
  }

  /** Throws INITIAL_VALUES_MISSING unless the run has its initial values. */
  public void checkInitialized() {
    synchronized (lock) {
      requireInitialized();
    }
  }

  /** Completes (with the run's step) once the run has completed at least {@code minStep} steps. */
  public CompletableFuture<Long> awaitStep(long minStep) {
    synchronized (lock) {
      return step >= minStep ? CompletableFuture.completedFuture(step) : waiters.await(minStep);
    }
  }

  /** Releases the kernel threads; the run must not be used afterwards. */
  void close() {
    optimizer.close();
  }

  /** Fails every waiter, for example when the run is deleted or the server drains. */
  public void cancelWaiters(RuntimeException cause) {
    List<CompletableFuture<Long>> all;
    synchronized (lock) {
      all = waiters.all();
    }
    all.forEach(f -> f.completeExceptionally(cause));
  }

  /** Counts a refused push by reason, for status and metrics. */
  public void countRefusal(ErrorReason reason) {
    refusals.count(reason);
  }

  /** Refused pushes by reason (without the {@code ERROR_REASON_} prefix). */
  public Map<String, Long> refusals() {
    return refusals.snapshot();
  }

  /** SYNC: the replicas whose push for the current step has arrived. */
  public List<Integer> pendingReplicas() {
    synchronized (lock) {
      return barrier.pendingReplicas();
    }
  }

  /** A consistent copy of the full state, for snapshots and export. */
  public RunSnapshot snapshot() {
    synchronized (lock) {
      requireInitialized();
      return new RunSnapshot(id, config, initialDigest.clone(), optimizer.exportState());
    }
  }

  /**
   * Changes a group's hyperparameters from the next step on: {@code change} gets the current values
   * and returns the new ones (it may throw a {@link RoadlessException} of its own).
   *
   * @param expectedStep when not negative, the step the caller expects the run to be at
   */
  public void updateHyperparameters(
      String group, UnaryOperator<Hyperparameters> change, long expectedStep) {
    synchronized (lock) {
      if (expectedStep >= 0 && expectedStep != step) {
        throw Refusals.stepMismatch(id, expectedStep, step);
      }
      HyperparameterChange.apply(id, optimizer, group, change);
    }
  }

  private void requireInitialized() {
    if (initialDigest == null) {
      throw Refusals.initialValuesMissing(id);
    }
  }
}
