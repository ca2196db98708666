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
 * {@link SyncBarrier} or the {@link AsyncLedger}, a step runs the kernel, publishes y as a view of
 * the new state ({@link TrainPublication}) and wakes the {@link StepWaiters}. Thread-safe; every
 * mutation happens under one lock and either completes or changes nothing.
 */
public final class Run {
  /** The largest step a run reaches, 2^53 - 1: exact in a double, a JSON number, JavaScript. */
  public static final long MAX_STEP = (1L << 53) - 1;

  private final String id;
  private final RunConfig config;
  private final List<String> names;
  private final long[] sizes;
  private final ScheduleFreeOptimizer optimizer;
  private final Object lock = new Object();
  private final BudgetedSets buffers;
  private final StepWaiters waiters = new StepWaiters();
  private final RefusalCounts refusals = new RefusalCounts();
  private final TrainPublication train;
  private final StepProtocol steps;

  private final MemoryBudget.Grant reservation;
  private byte[] initialDigest;
  private volatile long snapshotStep = -1;
  private boolean closed;
  private volatile String snapshotError = "";

  /**
   * @param reservation the run's admitted memory ({@link RunMemory#reservedBytes}), given back on
   *     close
   */
  Run(
      String id,
      RunConfig config,
      ScheduleFreeOptimizer optimizer,
      byte[] initialDigest,
      MemoryBudget budget,
      MemoryBudget.Grant reservation) {
    this.id = id;
    this.config = config;
    this.names = config.names();
    this.sizes = config.sizes();
    this.optimizer = optimizer;
    if (!optimizer.tensors().equals(config.tensors())) {
      throw new IllegalStateException("the optimizer's tensors are not the configuration's");
    }
    this.reservation = reservation;
    this.buffers = RunMemory.gradientBuffers(config, budget);
    this.train = new TrainPublication(names, sizes, budget, optimizer);
    this.steps =
        new StepProtocol(id, config, optimizer, buffers, waiters, train, this::snapshotStep, lock);
    this.initialDigest = initialDigest;
    if (initialDigest != null) {
      train.publish();
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
      return steps.step;
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
      train.publish();
      return true;
    }
  }

  /**
   * Gradient arrays for one push, recycled. Hand them to {@link #push}, which owns them from then
   * on, or give them back with {@link #releaseBuffers} if the push fails before.
   */
  public float[][] acquireBuffers() {
    return buffers.acquire(true);
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
    if (pushStep < 0 || pushStep > MAX_STEP) {
      throw Refusals.stepOutOfRange("step", pushStep, MAX_STEP);
    }
    synchronized (lock) {
      requireActive();
      if (pushStep > steps.step) {
        throw Refusals.stepInFuture(id, pushStep, steps.step);
      }
    }
  }

  /**
   * A SYNC chunked push of the run's current step joins that step's pipeline ({@link
   * StepPipeline}); null when it takes the whole-step path (ASYNC, a re-sent push, a voided step).
   *
   * @param early receives the next y range by range, or null
   */
  public PipelinedPush joinPipeline(int replica, long pushStep, EarlyParameters early) {
    synchronized (lock) {
      boolean sync = config.mode() == RunConfig.Mode.SYNC && steps.failure == null && !closed;
      return sync && !steps.barrier().isPending(replica)
          ? steps.pipeline().join(replica, pushStep, steps.step, early)
          : null;
    }
  }

  /** A push summed into the step's one set ({@link GradientSum}); null: it needs its own. */
  public SummedPush joinSum(int replica, long pushStep) {
    synchronized (lock) {
      boolean ok = steps.failure == null && !closed;
      return ok ? steps.joinSum(replica, pushStep, this::requireActive) : null;
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
   * @param print the gradient's fingerprint, which tells a re-sent push from a conflicting one
   * @param sink sees y of the step this push takes part in (may be null)
   */
  public PushResult push(
      int replica,
      long pushStep,
      float[][] gradient,
      boolean bounded,
      long print,
      ParameterSink sink) {
    return push(replica, pushStep, Pushed.arrays(gradient, bounded), print, sink);
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
        PushResult done =
            steps.duplicateOrComplete(replica, pushStep, gradient, sink, this::requireActive);
        if (done != null) {
          return done;
        }
      }
      long bad = gradient.checkInPlace();
      if (bad != ReplicaMean.FINITE) {
        throw Refusals.nonFiniteGradient(names, bad, gradient);
      }
      synchronized (lock) {
        PushResult done =
            steps.duplicateOrComplete(replica, pushStep, gradient, sink, this::requireActive);
        // null: the other replica's push did not arrive meanwhile
        return done != null ? done : steps.hold(replica, pushStep, Pushed.shared(gradient), sink);
      }
    }
    float[][] copy = buffers.acquire(true);
    long bad;
    try {
      bad = ReplicaMean.into(optimizer, new ReplicaMean.Input[] {gradient}, copy, true);
    } catch (RuntimeException | InternalError e) {
      buffers.release(copy);
      throw e;
    }
    if (bad != ReplicaMean.FINITE) {
      buffers.release(copy);
      throw Refusals.nonFiniteGradient(names, bad, gradient);
    }
    return push(replica, pushStep, Pushed.arrays(copy, false), PushPrints.UNKNOWN, sink);
  }

  private PushResult push(int replica, long pushStep, Pushed push, long print, ParameterSink sink) {
    synchronized (lock) {
      try {
        requireActive();
      } catch (RuntimeException e) {
        buffers.release(push.owned());
        throw e;
      }
      return steps.push(replica, pushStep, push, print, sink);
    }
  }

  /**
   * Every tensor of a sequence, all from one step, held for the caller until it calls {@link
   * ParameterSnapshot#release} (once, when it no longer reads the arrays).
   */
  public ParameterSnapshot acquireParameters(Sequence sequence) {
    synchronized (lock) {
      requireActive();
      return sequence == Sequence.TRAIN ? train.acquire() : train.read(optimizer, sequence);
    }
  }

  /** Throws INITIAL_VALUES_MISSING or RUN_FAILED unless the run can serve training. */
  public void checkActive() {
    synchronized (lock) {
      requireActive();
    }
  }

  /** Completes (with the run's step) once the run has completed at least {@code minStep} steps. */
  public CompletableFuture<Long> awaitStep(long minStep) {
    synchronized (lock) {
      requireServing(); // waiting for min_step > 0 also waits for the initial values
      long step = steps.step;
      return step >= minStep ? CompletableFuture.completedFuture(step) : waiters.await(minStep);
    }
  }

  /** Releases the kernel threads; the run must not be used afterwards. */
  void close() {
    synchronized (lock) {
      closed = true; // from now on nothing reads a push or writes y: segments may be unmapped
      train.detach(); // a lagging reader's y is stored: the state may go
    }
    optimizer.close();
    buffers.close();
    train.close();
    reservation.close();
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
      return steps.barrier().pendingReplicas();
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
      requireActive();
      if (expectedStep >= 0 && expectedStep != steps.step) {
        throw Refusals.stepMismatch(id, expectedStep, steps.step);
      }
      // No detach: the change applies from the next step; the TRAIN view keeps its own betas.
      HyperparameterChange.apply(id, optimizer, group, change);
      steps.pipeline().hyperparametersChanged();
    }
  }

  /** The failure that stopped this run, or null while it is ACTIVE. */
  public RunFailure failure() {
    synchronized (lock) {
      return steps.failure;
    }
  }

  /** The step of the newest snapshot written for this run, -1 with none. */
  public long snapshotStep() {
    return snapshotStep;
  }

  /** The message of the latest failed snapshot attempt, empty after a success. */
  public String snapshotError() {
    return snapshotError;
  }

  /** Records the outcome of a snapshot attempt: its step, or the error that stopped it. */
  public void snapshotTaken(long atStep, String error) {
    snapshotError = error == null ? "" : error;
    snapshotStep = error == null ? atStep : snapshotStep;
  }

  /** Under the lock: initial values are there and the run has not FAILED. */
  private void requireActive() {
    requireServing();
    requireInitialized();
  }

  /** Under the lock: the run is neither deleted nor FAILED. */
  private void requireServing() {
    if (closed) {
      throw Refusals.runDeleted(id);
    }
    if (steps.failure != null) {
      throw steps.failed();
    }
  }

  private void requireInitialized() {
    if (initialDigest == null) {
      throw Refusals.initialValuesMissing(id);
    }
  }
}
