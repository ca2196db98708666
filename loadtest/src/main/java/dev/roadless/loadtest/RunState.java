package dev.roadless.loadtest;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * One run under test: its tensors, the gradients every replica of it pushes (shared, read-only),
 * when its replicas stop, and for SYNC runs the step latency: from the first replica's push of step
 * k (its intended send time in the open loop) to the last replica's receipt of y_{k+1}.
 */
final class RunState {
  private static final long UNSET = -1;

  final String runId;
  final int replicas;
  final List<String> names;
  final float[][] gradient;
  final float[][] nanGradient;

  /** SYNC: replicas push no step at or after this one. */
  private final AtomicLong stopStep = new AtomicLong(Long.MAX_VALUE);

  /** ASYNC with a step count: pushes left. */
  final AtomicLong pushesLeft = new AtomicLong(Long.MAX_VALUE);

  /** Steps this tool saw applied: SYNC steps every replica got y for, ASYNC pushes accepted. */
  final LongAdder stepsSeen = new LongAdder();

  private final AtomicLong firstStep = new AtomicLong(UNSET);
  private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
  private final Measurements measurements;

  private static final class Pending {
    long firstPush = Long.MAX_VALUE;
    long lastAnswer = Long.MIN_VALUE;
    int answers;
  }

  RunState(String runId, int replicas, int params, int tensors, Measurements measurements) {
    this.runId = runId;
    this.replicas = replicas;
    this.measurements = measurements;
    this.names = new ArrayList<>();
    this.gradient = new float[tensors][];
    this.nanGradient = new float[tensors][];
    SplittableRandom random = new SplittableRandom(runId.hashCode());
    for (int t = 0; t < tensors; t++) {
      names.add("t" + t);
      // Sizes differ by at most one element; the sum is params.
      int size = params / tensors + (t < params % tensors ? 1 : 0);
      gradient[t] = new float[size];
      for (int i = 0; i < size; i++) {
        gradient[t][i] = (float) random.nextGaussian() * 1e-3f;
      }
      nanGradient[t] = gradient[t];
    }
    nanGradient[0] = gradient[0].clone();
    nanGradient[0][0] = Float.NaN;
  }

  /** Called by every replica with the step it starts at; SYNC step counts start there. */
  void started(long step, long steps) {
    if (firstStep.compareAndSet(UNSET, step) && steps > 0) {
      stopStep.set(step + steps);
      pushesLeft.set(steps);
    }
  }

  /** SYNC, the test is over: every replica pushes step {@code k} (which one may have) and stops. */
  void stopAfter(long k) {
    stopStep.accumulateAndGet(k + 1, Math::min);
  }

  boolean pastStop(long k) {
    return k >= stopStep.get();
  }

  /** SYNC: a replica sends (or was meant to send) step {@code k} at {@code nanos}. */
  void pushed(long k, long nanos) {
    Pending p = pending.computeIfAbsent(k, x -> new Pending());
    synchronized (p) {
      p.firstPush = Math.min(p.firstPush, nanos);
    }
  }

  /** SYNC: a replica received y_{k+1} at {@code nanos}; the last one completes the step. */
  void answered(long k, long nanos) {
    Pending p = pending.get(k);
    if (p == null) {
      return;
    }
    synchronized (p) {
      p.lastAnswer = Math.max(p.lastAnswer, nanos);
      if (++p.answers < replicas) {
        return;
      }
    }
    pending.remove(k);
    stepsSeen.increment();
    measurements.success(Measurements.STEP, p.lastAnswer - p.firstPush);
  }
}
