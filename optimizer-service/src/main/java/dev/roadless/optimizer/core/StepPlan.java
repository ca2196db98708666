package dev.roadless.optimizer.core;

/**
 * The next step of one optimizer, fixed before it is applied: every group's schedule scalars and
 * the kernel instances they make. Made by {@link ScheduleFreeOptimizer#plan()} without changing
 * anything; {@link #preview} runs the step's kernel for one range on a scratch copy of the state
 * (the run's arrays are only read) to see the new y early, and {@link ScheduleFreeOptimizer#commit}
 * applies the same kernels to the whole state. Because both run the same kernel instances on the
 * same inputs, every y a preview gives is bit for bit the y the commit makes, and the committed
 * state is bit for bit that of {@link ScheduleFreeOptimizer#stepFiniteGradients}.
 *
 * <p>A plan is valid for one step: once the optimizer has stepped (by this plan or any other
 * means), committing it is refused. Previews are thread-safe and may run concurrently with each
 * other, never with a step.
 */
public final class StepPlan {
  /** Elements per kernel call on the scratch copy: every scratch array stays in L1/L2. */
  static final int BLOCK = ChunkStepper.CHECK_BLOCK;

  private static final ThreadLocal<float[][]> SCRATCH =
      ThreadLocal.withInitial(() -> new float[6][BLOCK]);

  final ScheduleFreeOptimizer owner;
  final long k;
  final Schedule.Step[] steps;
  final Kernel[] kernels;
  final double[] betas;
  private final Layout layout;
  private final TensorBuffers[] buffers;
  private final java.util.concurrent.locks.Lock lock;

  StepPlan(
      ScheduleFreeOptimizer owner,
      java.util.concurrent.locks.Lock readLock,
      Layout layout,
      TensorBuffers[] buffers,
      BaseUpdate update,
      GroupRuntime[] groups) {
    this.owner = owner;
    this.lock = readLock;
    this.layout = layout;
    this.buffers = buffers;
    this.steps = new Schedule.Step[groups.length];
    this.kernels = new Kernel[groups.length];
    this.betas = new double[groups.length];
    for (int g = 0; g < groups.length; g++) {
      GroupRuntime group = groups[g];
      double lrK = update.scheduledLr(group.hp, group.schedule.k());
      steps[g] = group.schedule.next(lrK, group.hp);
      kernels[g] = update.kernel(group.hp, steps[g], group.schedule.yBeta());
      betas[g] = group.hp.beta();
    }
    this.k = groups[0].schedule.k();
  }

  void requireCurrent(ScheduleFreeOptimizer optimizer, long at) {
    if (owner != optimizer || k != at) {
      throw new IllegalStateException("the plan of step " + k + " cannot be committed at " + at);
    }
  }

  /** The step this plan applies (completed steps before it). */
  public long step() {
    return k;
  }

  /**
   * The new y of elements {@code [from, to)} of tensor {@code tensor} after this step, computed on
   * a scratch copy of that range's state: the optimizer's arrays are read, never written.
   *
   * @param gradient the tensor's whole mean gradient array (read at {@code [from, to)})
   * @param y receives the new y of element {@code i} at {@code y[yAt + i - from]}
   * @return false when the range's new state would not be finite (y is then not meaningful; the
   *     commit of this plan will fail the same way)
   * @throws IllegalArgumentException for a range outside the tensor
   */
  public boolean preview(int tensor, int from, int to, float[] gradient, float[] y, int yAt) {
    if (tensor < 0 || tensor >= buffers.length || from < 0 || to > layout.numel[tensor]) {
      throw new IllegalArgumentException("range outside tensor " + tensor);
    }
    TensorBuffers b = buffers[tensor];
    Kernel kernel = kernels[layout.groupOfTensor[tensor]];
    float[][] s = SCRATCH.get();
    TensorBuffers scratch =
        new TensorBuffers(s[0], s[1], b.v == null ? null : s[2], b.m == null ? null : s[3]);
    float[] g = s[4];
    float[] out = s[5];
    lock.lock();
    try {
      // Everything copied to index 0, so the kernel's arrays share one index and vectorize.
      for (int at = from; at < to; at += BLOCK) {
        int n = Math.min(BLOCK, to - at);
        System.arraycopy(b.z, at, scratch.z, 0, n);
        System.arraycopy(b.x, at, scratch.x, 0, n);
        if (b.v != null) {
          System.arraycopy(b.v, at, scratch.v, 0, n);
        }
        if (b.m != null) {
          System.arraycopy(b.m, at, scratch.m, 0, n);
        }
        System.arraycopy(gradient, at, g, 0, n);
        kernel.apply(scratch, g, out, 0, n);
        if (!finite(scratch, n)) {
          return false;
        }
        System.arraycopy(out, 0, y, yAt + at - from, n);
      }
      return true;
    } finally {
      lock.unlock();
    }
  }

  /** The scan {@link StateCheck} makes of a chunk, on the scratch copy. */
  private static boolean finite(TensorBuffers b, int n) {
    return Finite.all(b.z, 0, n)
        && Finite.all(b.x, 0, n)
        && (b.v == null || Finite.all(b.v, 0, n))
        && (b.m == null || Finite.all(b.m, 0, n));
  }
}
