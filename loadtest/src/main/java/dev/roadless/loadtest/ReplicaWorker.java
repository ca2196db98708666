package dev.roadless.loadtest;

import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.optimizer.shard.ShardedClient;
import dev.roadless.optimizer.shard.ShardedSession;
import dev.roadless.proto.common.v1.DataType;
import io.grpc.Status;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * One synthetic trainer replica: the loop of {@link ReplicaSession} with a fixed gradient. In the
 * closed loop it pushes again as soon as y comes back; in the open loop push n is meant to leave at
 * {@code start + n / rate} and its latency is measured from then, however late it actually left
 * (wrk2's correction for coordinated omission: a stalled server cannot hide the pushes it delayed).
 */
final class ReplicaWorker implements Runnable {
  /** Failures in a row (other than an injected refusal) after which a replica gives up. */
  private static final int MAX_FAILURES_IN_A_ROW = 10;

  private final Scenario scenario;
  private final OptimizerClient client;
  private final ShardedClient sharded;
  private final RunState run;
  private final int replica;
  private final long startNanos;
  private final long deadlineNanos;
  private final Measurements measurements;
  private final SplittableRandom random;

  ReplicaWorker(
      Scenario scenario,
      OptimizerClient client,
      ShardedClient sharded,
      RunState run,
      int replica,
      long startNanos,
      long deadlineNanos,
      Measurements measurements) {
    this.scenario = scenario;
    this.client = client;
    this.sharded = sharded;
    this.run = run;
    this.replica = replica;
    this.startNanos = startNanos;
    this.deadlineNanos = deadlineNanos;
    this.measurements = measurements;
    this.random = new SplittableRandom(31L * run.runId.hashCode() + replica);
  }

  @Override
  public void run() {
    DataType dtype =
        scenario.transport() == Scenario.Transport.BF16
            ? DataType.DATA_TYPE_BFLOAT16
            : DataType.DATA_TYPE_FLOAT32;
    sleepUntil(startNanos);
    try (Loop session = open(dtype)) {
      Parameters y = session.current();
      run.started(y.step(), scenario.steps());
      train(session, y);
    } catch (RuntimeException e) { // y could not be read (at the start, or after a stale push)
      measurements.failure(Measurements.GET_PARAMETERS, e);
    }
  }

  /** A replica's session: on the one optimizer, or on every shard of a sharded run. */
  private interface Loop extends AutoCloseable {
    Parameters current();

    Parameters next(Parameters y, float[][] gradient);

    @Override
    void close();
  }

  private Loop open(DataType dtype) {
    if (sharded != null) {
      ShardedSession s = sharded.session(run.runId, replica, dtype, 0);
      return new Loop() {
        @Override
        public Parameters current() {
          return s.current();
        }

        @Override
        public Parameters next(Parameters y, float[][] gradient) {
          return s.next(y, gradient);
        }

        @Override
        public void close() {
          s.close();
        }
      };
    }
    ReplicaSession s = new ReplicaSession(client, run.runId, replica, dtype, true);
    return new Loop() {
      @Override
      public Parameters current() {
        return s.current();
      }

      @Override
      public Parameters next(Parameters y, float[][] gradient) {
        return s.next(y, gradient);
      }

      @Override
      public void close() {
        s.close();
      }
    };
  }

  private void train(Loop session, Parameters y) {
    double periodNanos = scenario.rate() > 0 ? 1e9 / scenario.rate() : 0;
    long sent = 0;
    int failuresInARow = 0;
    while (true) {
      long k = y.step();
      if (stop(k)) {
        return;
      }
      long intended = System.nanoTime();
      if (periodNanos > 0) {
        intended = startNanos + (long) (sent * periodNanos);
        sleepUntil(intended);
      }
      sent++;
      if (scenario.sync()) {
        run.pushed(k, intended);
      }
      boolean inject = scenario.injectNan() > 0 && random.nextDouble() < scenario.injectNan();
      long t0 = intended;
      while (true) {
        try {
          Parameters next = session.next(y, inject ? run.nanGradient : run.gradient);
          long now = System.nanoTime();
          measurements.success(Measurements.TRAIN, now - t0);
          if (scenario.sync()) {
            run.answered(k, now);
          } else {
            run.stepsSeen.increment();
            measurements.success(Measurements.STEP, now - t0);
          }
          y = next;
          failuresInARow = 0;
          break;
        } catch (RuntimeException e) { // a status, or the SDK's open circuit after its retries
          measurements.failure(Measurements.TRAIN, e);
          if (!inject && ++failuresInARow >= MAX_FAILURES_IN_A_ROW) {
            System.err.println(
                "loadtest: replica " + replica + " of " + run.runId + " gives up: " + e);
            return;
          }
          if (!inject && Status.fromThrowable(e).getCode() == Status.Code.DEADLINE_EXCEEDED) {
            return; // the other replicas of a SYNC step are gone; waiting again will not help
          }
          if ("STEP_STALE".equals(ErrorReasons.of(e))) {
            // ASYNC: the run moved on too far while this gradient was made; start from its y.
            y = session.current();
            break;
          }
          // The same step again, with a finite gradient: a refused push changed nothing.
          inject = false;
          t0 = System.nanoTime();
        }
      }
    }
  }

  private boolean stop(long k) {
    if (scenario.sync()) {
      if (scenario.steps() == 0 && System.nanoTime() >= deadlineNanos) {
        run.stopAfter(k);
      }
      return run.pastStop(k);
    }
    if (scenario.steps() > 0) {
      return run.pushesLeft.getAndDecrement() <= 0;
    }
    return System.nanoTime() >= deadlineNanos;
  }

  private static void sleepUntil(long nanos) {
    long left;
    while ((left = nanos - System.nanoTime()) > 0) {
      LockSupport.parkNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)));
    }
  }
}
