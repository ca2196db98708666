package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.NonFiniteStateException;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.StepPlan;
import java.util.function.LongSupplier;

/**
 * The serving protocol of one run behind its lock: a push goes to the {@link SyncBarrier} (SYNC) or
 * the {@link AsyncLedger} (ASYNC); a complete step runs the kernel, publishes y as a view of the
 * new state ({@link TrainPublication}) and wakes the {@link StepWaiters}. A step that makes the
 * state non-finite moves the run to FAILED. Not thread-safe: {@link Run} calls it under its lock.
 */
final class StepProtocol {
  private final String id;
  private final RunConfig config;
  private final ScheduleFreeOptimizer optimizer;
  private final BudgetedSets buffers;
  private final SyncBarrier barrier;
  private final GradientSum sum;
  private final StepPipeline pipeline;
  private final AsyncLedger ledger;
  private final StepWaiters waiters;
  private final TrainPublication train;
  private final PushPrints prints;
  private final LongSupplier snapshotStep;

  /** Completed steps. */
  long step;

  /** Why the run FAILED, or null while it is ACTIVE. */
  RunFailure failure;

  StepProtocol(
      String id,
      RunConfig config,
      ScheduleFreeOptimizer optimizer,
      BudgetedSets buffers,
      StepWaiters waiters,
      TrainPublication train,
      LongSupplier snapshotStep,
      Object lock) {
    this.id = id;
    this.config = config;
    this.optimizer = optimizer;
    this.buffers = buffers;
    this.barrier = new SyncBarrier(id, config.names(), config.replicas(), optimizer, buffers);
    this.prints = new PushPrints(config.replicas());
    this.sum =
        config.mode() == RunConfig.Mode.SYNC && config.replicas() <= 2
            ? new GradientSum(
                lock,
                id,
                config.names(),
                buffers,
                config.replicas(),
                () -> step,
                r -> {
                  barrier.drop(r);
                  prints.forget(r);
                })
            : null;
    this.pipeline = new StepPipeline(lock, optimizer, buffers, config.sizes(), config.replicas());
    this.ledger = new AsyncLedger(id, config.maxStaleness());
    this.waiters = waiters;
    this.train = train;
    this.snapshotStep = snapshotStep;
    this.step = optimizer.stepCount();
  }

  SyncBarrier barrier() {
    return barrier;
  }

  StepPipeline pipeline() {
    return pipeline;
  }

  /**
   * SYNC with one or two replicas: a chunked push of the run's step that sums its chunks into the
   * step's one set; null when it cannot (another run mode, a push of another step, a replica whose
   * push is pending or already being summed).
   */
  SummedPush joinSum(int replica, long pushStep, Runnable active) {
    if (sum == null || pushStep != step || barrier.isPending(replica)) {
      return null;
    }
    return sum.join(
        replica,
        pushStep,
        (push, bounded, print) -> {
          active.run();
          return pushSummed(push, bounded, print, null);
        });
  }

  /**
   * A summed push whose every chunk arrived: held for the step, or completing it.
   *
   * @param bounded every element of the push is {@link dev.roadless.optimizer.core.Finite#bounded}
   */
  PushResult pushSummed(SummedPush push, boolean bounded, long print, ParameterSink sink) {
    int replica = push.replica;
    float[][] g = sum.accept(push);
    Pushed mine = Pushed.arrays(g, bounded);
    if (!barrier.othersPending(replica)) {
      barrier.hold(replica, mine, sink);
      prints.accepted(replica, push.step, print);
      return new PushResult(false, push.step, push.step, step, false);
    }
    // G is the mean of every push; or the other replica's push is held in a set (or segment) of
    // its own and G is ours alone: the pipeline formed the mean, or the barrier forms it now.
    if (!sum.complete() && !sum.alone(push)) {
      // The other replica's push is held in a set of its own, and a second stream of that
      // replica also wrote into G: G is not ours alone, so the step's sum is void.
      String why = "replica " + (1 - replica) + " pushed twice into step " + push.step;
      sum.voidStep(null, why);
      throw Refusals.pushVoided(id, replica, push.step, why);
    }
    float[][] mean =
        sum.complete() ? g : pipeline.completeMean(step, replica, mine, barrier.held());
    StepPlan plan = mean != null && mean != g ? pipeline.plan() : null;
    if (mean != null) {
      barrier.hold(replica, mine, sink);
    } else {
      try {
        mean = barrier.mean(replica, mine, sink);
      } catch (RuntimeException e) {
        sum.voidStep(push, "the mean is not finite");
        throw e;
      }
    }
    prints.accepted(replica, push.step, print);
    try {
      applyStep(plan, mean, barrier.sinks());
    } finally {
      barrier.clear(mean);
      sum.stepDone();
      pipeline.finish(plan != null);
    }
    return new PushResult(true, push.step, push.step, step, false);
  }

  /** A checked push: refused if it conflicts with the replica's accepted push for that step. */
  PushResult push(int replica, long pushStep, Pushed push, long print, ParameterSink sink) {
    if (prints.conflicts(replica, pushStep, print)) {
      buffers.release(push.owned());
      throw Refusals.pushConflict(id, replica, pushStep);
    }
    return config.mode() == RunConfig.Mode.ASYNC
        ? pushAsync(replica, pushStep, push, print, sink)
        : pushSync(replica, pushStep, push, print, sink);
  }

  /** SYNC: holds a push that does not complete the step (already checked in place). */
  PushResult hold(int replica, long pushStep, Pushed push, ParameterSink sink) {
    barrier.hold(replica, push, sink);
    prints.accepted(replica, pushStep, PushPrints.UNKNOWN);
    return new PushResult(false, pushStep, pushStep, step, false);
  }

  /**
   * A shared-memory push, after {@code check}: a duplicate's answer, or the step this push
   * completes, or null (it would be held: the caller checks it in place first).
   */
  PushResult duplicateOrComplete(
      int replica, long pushStep, SharedGradient gradient, ParameterSink sink, Runnable check) {
    check.run();
    if (pushStep < step || barrier.isPending(replica) || barrier.othersPending(replica)) {
      return pushSync(replica, pushStep, Pushed.shared(gradient), PushPrints.UNKNOWN, sink);
    }
    return null;
  }

  PushResult pushSync(int replica, long pushStep, Pushed push, long print, ParameterSink sink) {
    if (pushStep < step) {
      // Every replica contributed to every completed SYNC step: this is a re-send.
      buffers.release(push.owned());
      return new PushResult(true, pushStep, pushStep, step, true);
    }
    if (barrier.isPending(replica)) {
      buffers.release(push.owned());
      return new PushResult(false, pushStep, pushStep, step, true);
    }
    if (sum != null && sum.touchedBy(replica)) {
      // This replica's earlier stream for the step is still summing into G, which the mean
      // would then read as the other replica's alone: the step's sum is void.
      sum.voidStep(null, "replica " + replica + " pushed twice into step " + pushStep);
    }
    if (!barrier.othersPending(replica)) {
      barrier.hold(replica, push, sink);
      prints.accepted(replica, pushStep, print);
      return new PushResult(false, pushStep, pushStep, step, false);
    }
    float[][] mean = pipeline.completeMean(step, replica, push, barrier.held());
    StepPlan plan = null;
    if (mean != null) {
      barrier.hold(replica, push, sink); // every push is in: the pipeline formed the mean
      plan = pipeline.plan();
    } else {
      try {
        mean = barrier.mean(replica, push, sink);
      } catch (RuntimeException e) {
        buffers.release(push.owned());
        throw e;
      }
    }
    prints.accepted(replica, pushStep, print);
    try {
      applyStep(plan, mean, barrier.sinks());
    } finally {
      barrier.clear(mean);
      if (sum != null) {
        sum.stepDone();
      }
      pipeline.finish(plan != null);
    }
    return new PushResult(true, pushStep, pushStep, step, false);
  }

  private PushResult pushAsync(
      int replica, long pushStep, Pushed push, long print, ParameterSink sink) {
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
    prints.accepted(replica, pushStep, print);
    try {
      applyStep(
          null, push.owned(), sink == null ? new ParameterSink[0] : new ParameterSink[] {sink});
    } finally {
      buffers.release(push.owned());
    }
    PushResult result = new PushResult(true, pushStep, appliedAs, step, false);
    ledger.applied(replica, result);
    return result;
  }

  /**
   * One step with {@code gradient}; with the kernels of {@code plan} when the pipeline fixed them
   * (else null). The kernel writes y only where a sink needs it (into a recycled set it copies
   * from); the run's TRAIN snapshot is detached before and published after, as a view of the state.
   */
  private void applyStep(StepPlan plan, float[][] gradient, ParameterSink[] sinks) {
    train.detach(); // before the state changes
    // The fused pass writes every element of y, so recycled arrays need no clearing.
    float[][] y = sinks.length > 0 ? train.take() : null;
    try {
      step =
          plan == null
              ? optimizer.stepFiniteGradients(gradient, y, sinks)
              : optimizer.commit(plan, gradient, y, sinks);
    } catch (NonFiniteStateException e) {
      step = optimizer.stepCount();
      failure = new RunFailure(e.step(), e.tensor(), e.element(), e.slot());
      RoadlessException failed = failed();
      waiters.all().forEach(f -> f.completeExceptionally(failed));
      throw failed;
    } finally {
      train.give(y); // null is ignored; the sinks have copied y
      train.publish(); // the new step's y, or the same step's again after a refused one
    }
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

  /** The RUN_FAILED refusal of a FAILED run. */
  RoadlessException failed() {
    return Refusals.runFailed(id, failure, snapshotStep.getAsLong());
  }
}
