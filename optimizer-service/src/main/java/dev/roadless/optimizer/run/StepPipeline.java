package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.ReplicaMean;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.StepPlan;
import java.util.Arrays;

/**
 * A SYNC step formed while the replicas' chunked pushes arrive. The run's tensors are cut into
 * blocks of {@link #BLOCK} elements; once a block has arrived from every replica, its mean is
 * formed into the step's mean set m ({@link ReplicaMean#range}, bit for bit the whole-step mean),
 * and for pushes that asked for early parameters the step's {@link StepPlan} previews the block's
 * new y on a scratch copy, encoded once and queued on every such stream. The state is not written
 * until every push is accepted: then the completing push commits the plan with m whole ({@link
 * StepProtocol}). A push that is refused or goes away before it is accepted, a mean that is not
 * finite, a preview whose state would not be finite or a hyperparameter change after the first
 * preview voids the pipeline of that step: it then runs whole, as without pipelining, and the early
 * y sent so far is void (the answers say so and send y again).
 *
 * <p>Not thread-safe: every method runs under the run's lock ({@link #lock}).
 */
final class StepPipeline {
  /** Elements per block: 256 KiB of float32, one y message. */
  static final int BLOCK = 1 << 16;

  final Object lock;
  private final ScheduleFreeOptimizer optimizer;
  private final BudgetedSets buffers;
  private final int replicas;
  private final int tensors;
  private final int[] blockTensor;
  private final int[] blockFrom;
  private final int[] blockTo;
  private final int[] firstBlock;
  private final int[][] received;
  private final boolean[] done;
  private final PipelinedPush[] participants;
  private final float[] y = new float[BLOCK];
  private int doneCount;
  private long step = -1;
  private boolean voided;
  private float[][] mean;
  private StepPlan plan;

  StepPipeline(
      Object lock, ScheduleFreeOptimizer optimizer, BudgetedSets buffers, long[] sizes, int r) {
    this.lock = lock;
    this.optimizer = optimizer;
    this.buffers = buffers;
    this.replicas = r;
    this.tensors = sizes.length;
    this.participants = new PipelinedPush[r];
    this.firstBlock = new int[sizes.length + 1];
    for (int t = 0; t < sizes.length; t++) {
      firstBlock[t + 1] = firstBlock[t] + (int) ((sizes[t] + BLOCK - 1) / BLOCK);
    }
    int blocks = firstBlock[sizes.length];
    blockTensor = new int[blocks];
    blockFrom = new int[blocks];
    blockTo = new int[blocks];
    for (int t = 0; t < sizes.length; t++) {
      for (int b = firstBlock[t]; b < firstBlock[t + 1]; b++) {
        blockTensor[b] = t;
        blockFrom[b] = (b - firstBlock[t]) * BLOCK;
        blockTo[b] = (int) Math.min(sizes[t], (long) blockFrom[b] + BLOCK);
      }
    }
    received = new int[r][blocks];
    done = new boolean[blocks];
  }

  /**
   * A chunked push of {@code replica} for the run's current step {@code runStep} joins the step's
   * pipeline; null when it cannot (a re-sent or pending push, a voided step).
   */
  PipelinedPush join(int replica, long pushStep, long runStep, EarlyParameters early) {
    if (pushStep != runStep) {
      return null;
    }
    if (step != runStep) {
      reset(runStep);
    }
    if (voided || participants[replica] != null) {
      return null;
    }
    PipelinedPush p = new PipelinedPush(this, replica, runStep, tensors, early);
    participants[replica] = p;
    return p;
  }

  void arrived(PipelinedPush p, int t, int from, int to, float[] values) {
    if (!current(p) || voided) {
      return;
    }
    p.arrays[t] = values;
    int[] mine = received[p.replica];
    for (int b = firstBlock[t] + from / BLOCK; b < firstBlock[t + 1] && blockFrom[b] < to; b++) {
      mine[b] += Math.min(to, blockTo[b]) - Math.max(from, blockFrom[b]);
      if (mine[b] == blockTo[b] - blockFrom[b] && everyReplicaHas(b)) {
        ready(b);
        if (voided) {
          return;
        }
      }
    }
  }

  private boolean everyReplicaHas(int b) {
    for (int r = 0; r < replicas; r++) {
      if (received[r][b] != blockTo[b] - blockFrom[b]) {
        return false;
      }
    }
    return true;
  }

  /** Block {@code b} is in from every replica: its mean, then its early y. */
  private void ready(int b) {
    boolean allSummed = true;
    for (PipelinedPush p : participants) {
      allSummed &= p.summed;
    }
    if (allSummed) {
      return; // the one set is the mean, and no summed push asked for early y
    }
    int t = blockTensor[b];
    int from = blockFrom[b];
    int to = blockTo[b];
    if (mean == null) {
      // Taken when the first block is in from every replica: the R pushes' sets and m are the
      // R + 1 sets the run was admitted with, as for a whole step.
      try {
        mean = replicas == 1 ? new float[tensors][] : buffers.acquire(true);
      } catch (RuntimeException e) {
        voidStep(); // over the memory budget: this step runs whole (and may be refused there)
        return;
      }
    }
    ReplicaMean.Input[] inputs = new ReplicaMean.Input[replicas];
    for (int r = 0; r < replicas; r++) {
      inputs[r] = ReplicaMean.of(participants[r].arrays);
    }
    if (replicas == 1) {
      mean[t] = participants[0].arrays[t]; // the mean of one replica is its gradient
    }
    if (ReplicaMean.range(inputs, t, from, to, mean[t], true) >= 0) {
      voidStep(); // the whole step finds the same element and refuses the completing push
      return;
    }
    done[b] = true;
    doneCount++;
    Object message = null;
    EarlyParameters encoder = null;
    for (PipelinedPush p : participants) {
      if (p.early == null || p.earlyVoid) {
        continue;
      }
      if (message == null) {
        if (plan == null) {
          plan = optimizer.plan();
        }
        if (!plan.preview(t, from, to, mean[t], y, 0)) {
          voidStep(); // the commit would fail the run: the whole step does that
          return;
        }
        message = p.early.encode(t, from, y, to - from);
        encoder = p.early;
      }
      p.early.send(message);
    }
    if (encoder != null) {
      encoder.done(message);
    }
  }

  void leave(PipelinedPush p) {
    if (!current(p)) {
      return;
    }
    if (p.accepted) {
      p.early = null; // its answer will not be read; the held push stays
    } else {
      voidStep();
    }
  }

  /** A hyperparameter change: a step whose kernels were fixed by a preview runs whole instead. */
  void hyperparametersChanged() {
    if (plan != null) {
      voidStep();
    }
  }

  /**
   * At the completing push of the run's step: the mean set m when the pipeline formed all of it
   * from exactly the pushes the barrier holds (and {@code push}), else null (the step runs whole).
   */
  float[][] completeMean(long runStep, int replica, Pushed push, Pushed[] held) {
    if (voided || step != runStep || doneCount != done.length) {
      return null;
    }
    for (int r = 0; r < replicas; r++) {
      Pushed p = r == replica ? push : held[r];
      if (participants[r] == null || p == null || !sameArrays(participants[r].arrays, p.owned())) {
        return null;
      }
    }
    return replicas == 1 ? push.owned() : mean;
  }

  /** The plan the pipeline previewed with (made now if no preview ran). */
  StepPlan plan() {
    if (plan == null) {
      plan = optimizer.plan();
    }
    return plan;
  }

  /**
   * The step is over. {@code viaPipeline}: it was committed with m, which the barrier released with
   * the pushes; the early y of every participant that kept its stream is complete.
   */
  void finish(boolean viaPipeline) {
    for (PipelinedPush p : participants) {
      if (p != null) {
        p.sentEarly = viaPipeline && p.early != null && !p.earlyVoid;
      }
    }
    if (viaPipeline) {
      mean = null;
    }
    reset(-1);
  }

  private void voidStep() {
    voided = true;
    for (PipelinedPush p : participants) {
      if (p != null) {
        p.earlyVoid = true;
      }
    }
    releaseMean();
    plan = null;
  }

  private void reset(long newStep) {
    releaseMean();
    step = newStep;
    voided = false;
    plan = null;
    doneCount = 0;
    Arrays.fill(done, false);
    Arrays.fill(participants, null);
    for (int[] r : received) {
      Arrays.fill(r, 0);
    }
  }

  private void releaseMean() {
    if (mean != null && replicas > 1) {
      buffers.release(mean);
    }
    mean = null;
  }

  private boolean current(PipelinedPush p) {
    return step == p.step && participants[p.replica] == p;
  }

  private static boolean sameArrays(float[][] seen, float[][] owned) {
    if (owned == null) {
      return false;
    }
    for (int t = 0; t < seen.length; t++) {
      if (seen[t] != null && seen[t] != owned[t]) {
        return false;
      }
    }
    return true;
  }
}
