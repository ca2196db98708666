package dev.roadless.optimizer.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Schedule-Free optimizer state for a set of float32 tensors: z, x and the base optimizer's moments
 * per tensor, and one {@link Schedule} per parameter group. y is derived from x and z.
 *
 * <p>Thread-safe. A step holds the write lock; reads hold the read lock, so a reader always sees
 * the state between two whole steps, never a torn mix. A refused call (bad input) changes nothing.
 * The kernels run on {@code threads} threads; the results do not depend on that number.
 */
public final class ScheduleFreeOptimizer implements AutoCloseable {
  private final Variant variant;
  private final BaseUpdate update;
  private final Layout layout;
  private final TensorBuffers[] buffers;
  private final GroupRuntime[] groups;
  private final ChunkExecutor executor;
  private final ChunkStepper stepper;
  private final ReadWriteLock lock = new ReentrantReadWriteLock();
  private boolean initialized;
  private NonFiniteStateException failure;

  /**
   * Builds an optimizer with zero state; call {@link #setInitialValues} before the first step.
   *
   * @throws IllegalArgumentException for duplicate or unknown names, a tensor in no group or in
   *     two, an invalid hyperparameter, or {@code threads < 1}
   */
  public ScheduleFreeOptimizer(
      Variant variant, List<TensorSpec> tensors, List<GroupSpec> groups, int threads) {
    this(variant, new Layout(tensors, groups), groups, threads);
  }

  private ScheduleFreeOptimizer(
      Variant variant, Layout layout, List<GroupSpec> groupSpecs, int threads) {
    if (variant == null) {
      throw new IllegalArgumentException("variant must not be null");
    }
    this.executor = new ChunkExecutor(threads);
    this.variant = variant;
    this.update = BaseUpdate.of(variant);
    this.layout = layout;
    this.groups = new GroupRuntime[groupSpecs.size()];
    for (int g = 0; g < groups.length; g++) {
      GroupSpec spec = groupSpecs.get(g);
      try {
        spec.hyperparameters().validate(variant);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("group '" + spec.name() + "': " + e.getMessage(), e);
      }
      groups[g] = new GroupRuntime(spec, new Schedule(update.initialLrMax()));
    }
    this.buffers = new TensorBuffers[layout.tensorCount()];
    this.stepper = new ChunkStepper(layout, buffers);
    for (int t = 0; t < buffers.length; t++) {
      Hyperparameters hp = groups[layout.groupOfTensor[t]].hp;
      buffers[t] =
          TensorBuffers.allocate(
              layout.numel[t], variant.hasSecondMoment(), update.hasFirstMoment(hp));
    }
  }

  /** A builder for the common case of building specs inline. */
  public static ScheduleFreeOptimizerBuilder builder(Variant variant) {
    return new ScheduleFreeOptimizerBuilder(variant);
  }

  /** This optimizer's variant. */
  public Variant variant() {
    return variant;
  }

  /** The tensors, in order. */
  public List<TensorSpec> tensors() {
    return layout.tensors;
  }

  /** The group names, in order. */
  public List<String> groupNames() {
    return layout.groupNames;
  }

  /**
   * Sets z = x = y to the given values and zeroes the moments. Allowed until the first step.
   *
   * @param values every tensor, with its exact element count, all finite; copied
   * @throws IllegalArgumentException for a missing, unknown, mis-sized or non-finite tensor
   * @throws IllegalStateException after the first step
   */
  public void setInitialValues(Map<String, float[]> values) {
    setInitialValues(Inputs.arrays(layout, values, true, "initial value"));
  }

  /** {@link #setInitialValues(Map)} in tensor order: IllegalArgumentException for a bad array. */
  public void setInitialValues(float[][] values) {
    float[][] byTensor = Inputs.ordered(layout, values, "initial value");
    Inputs.requireFinite(layout, byTensor, "initial value");
    lock.writeLock().lock();
    try {
      if (stepCountLocked() > 0) {
        throw new IllegalStateException("initial values can only be set before the first step");
      }
      for (int t = 0; t < buffers.length; t++) {
        TensorBuffers b = buffers[t];
        System.arraycopy(byTensor[t], 0, b.z, 0, b.length());
        System.arraycopy(byTensor[t], 0, b.x, 0, b.length());
        b.clearMoments();
      }
      initialized = true;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** {@link #step(Map, Map)} without writing y out. */
  public long step(Map<String, float[][]> replicaGradients) {
    return step(replicaGradients, null);
  }

  /**
   * Applies one step with the mean of the replicas' gradients, {@code (g_0 + ... + g_{R-1}) / R}
   * summed in replica order in float32 ({@link ReplicaMean}). A convenience over {@link
   * #stepFiniteGradients(float[][], float[][], YSink...)} that checks and orders its inputs.
   *
   * @param replicaGradients for every tensor, the R replicas' gradients (same R for all), each with
   *     the tensor's element count; never modified
   * @param yOut optional (may be null or partial): arrays that receive each named tensor's new y in
   *     the same pass
   * @return the number of completed steps after this one
   * @throws NonFiniteGradientException for a NaN or infinity, naming tensor, replica and index
   * @throws IllegalArgumentException for a missing, unknown or mis-sized array
   * @throws IllegalStateException before {@link #setInitialValues}
   */
  public long step(Map<String, float[][]> replicaGradients, Map<String, float[]> yOut) {
    float[][][] grads = Inputs.gradients(layout, replicaGradients);
    float[][] ys = yOut == null ? null : Inputs.arrays(layout, yOut, false, "y output");
    // Outside the lock: readers need not wait for a scan of caller-owned arrays.
    Inputs.requireFinite(layout, grads, executor);
    float[][] mean = ReplicaMean.ofReplicas(this, grads, layout.numel);
    return stepChecked(null, mean, ys, new YSink[0]);
  }

  /**
   * One step with one (mean) gradient in tensor order, for a caller that has already proved every
   * element finite (the optimizer server checks each push at its edge, while the values are in
   * cache): no second scan of the gradient. A NaN passed here corrupts the state; when in doubt use
   * {@link #step(Map, Map)}.
   *
   * @param gradient {@code [tensor]}, each with the tensor's element count; never modified
   * @param yOut {@code [tensor]} arrays that receive the new y in the same pass (an entry, or the
   *     whole argument, may be null)
   * @param sinks see y chunk by chunk as the kernel writes it into {@code yOut} (which must then be
   *     complete); may be empty
   * @return the number of completed steps after this one
   * @throws IllegalArgumentException for a missing or mis-sized array
   * @throws IllegalStateException before {@link #setInitialValues}
   * @throws NonFiniteStateException this step (applied whole) or an earlier one broke the state
   */
  public long stepFiniteGradients(float[][] gradient, float[][] yOut, YSink... sinks) {
    float[][] grads = Inputs.ordered(layout, gradient, "gradient");
    float[][] ys = yOut;
    if (ys != null && ys.length != layout.tensorCount()) {
      throw new IllegalArgumentException("y output needs one entry per tensor");
    }
    return stepChecked(null, grads, ys, sinks);
  }

  /**
   * Runs {@code task} once for every chunk of every tensor, on the kernel's threads (the caller's
   * included), and returns when all are done. Touches no optimizer state: the server uses it for
   * data-parallel passes next to a step (the replica mean), on the threads the step would use.
   */
  public void forEachChunk(RangeTask task) {
    executor.run(
        layout.chunkCount(),
        (w, c) -> task.run(layout.chunkTensor[c], layout.chunkFrom[c], layout.chunkTo[c]));
  }

  /** The next step's {@link StepPlan}, made without changing anything; needs initial values. */
  public StepPlan plan() {
    lock.readLock().lock();
    try {
      requireInitialized();
      return new StepPlan(this, lock.readLock(), layout, buffers, update, groups);
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * As {@link #stepFiniteGradients} with the kernels of {@code plan}, this optimizer's plan of the
   * step it is at (a hyperparameter change made since applies from the next step on); else throws
   * IllegalStateException.
   */
  public long commit(StepPlan plan, float[][] gradient, float[][] yOut, YSink... sinks) {
    return stepChecked(plan, Inputs.ordered(layout, gradient, "gradient"), yOut, sinks);
  }

  private long stepChecked(StepPlan plan, float[][] grads, float[][] yOut, YSink[] sinks) {
    float[][] ys = yOut == null ? new float[layout.tensorCount()][] : yOut;
    lock.writeLock().lock();
    try {
      requireInitialized();
      if (failure != null) {
        throw failure;
      }
      StepPlan p = plan != null ? plan : new StepPlan(this, null, layout, buffers, update, groups);
      p.requireCurrent(this, stepCountLocked());
      StateCheck check = new StateCheck();
      executor.run(
          layout.chunkCount(), (w, c) -> stepper.run(c, grads, ys, p.kernels, sinks, check));
      long before = groups[0].schedule.k();
      for (int g = 0; g < groups.length; g++) {
        groups[g].schedule.commit(p.steps[g], p.betas[g]);
      }
      failure = check.failure(layout, buffers, before);
      if (failure != null) {
        throw failure;
      }
      return stepCountLocked();
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Copies one sequence of the named tensors into the caller's arrays, all from the same step.
   *
   * @param out tensor name to destination array (exact element count); any subset of tensors
   * @return the number of completed steps the values belong to
   * @throws IllegalStateException before {@link #setInitialValues}
   */
  public long read(Sequence sequence, Map<String, float[]> out) {
    return readOrdered(sequence, Inputs.arrays(layout, out, false, "read destination"));
  }

  private long readOrdered(Sequence sequence, float[][] dst) {
    lock.readLock().lock();
    try {
      requireInitialized();
      int[] chunks = layout.chunksOf(dst);
      executor.run(
          chunks.length,
          (w, i) -> {
            int c = chunks[i];
            int t = layout.chunkTensor[c];
            Schedule s = groups[layout.groupOfTensor[t]].schedule;
            SequenceCopy.copy(
                sequence, update, s, buffers[t], dst[t], layout.chunkFrom[c], layout.chunkTo[c]);
          });
      return stepCountLocked();
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Copies one sequence of every tensor into {@code out[tensor]} (tensor order); its step. */
  public long read(Sequence sequence, float[][] out) {
    return readOrdered(sequence, Inputs.ordered(layout, out, "read destination"));
  }

  /** y at the current step, derived from the live state until the next step: {@link YReader}. */
  public YReader yReader() {
    lock.readLock().lock();
    try {
      requireInitialized();
      return YReader.of(update, layout, buffers, groups, stepCountLocked());
    } finally {
      lock.readLock().unlock();
    }
  }

  /** One tensor's sequence as a new array (for tests and small tensors). */
  public float[] read(Sequence sequence, String tensor) {
    int t = layout.tensor(tensor);
    if (t < 0) {
      throw new IllegalArgumentException("unknown tensor '" + tensor + "'");
    }
    float[] out = new float[layout.numel[t]];
    read(sequence, Map.of(tensor, out));
    return out;
  }

  /** A group's schedule scalars and live lr. */
  public GroupStatus status(String group) {
    lock.readLock().lock();
    try {
      GroupRuntime g = groups[layout.group(group)];
      Schedule s = g.schedule;
      return new GroupStatus(
          s.k(), s.lrK(), s.lrMax(), s.weightSum(), s.ck(), g.hp.lr(), s.yBeta());
    } finally {
      lock.readLock().unlock();
    }
  }

  /** A group's hyperparameters as currently set. */
  public Hyperparameters hyperparameters(String group) {
    lock.readLock().lock();
    try {
      return groups[layout.group(group)].hp;
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * Replaces a group's hyperparameters from the next step on (lr is read fresh every step).
   *
   * @throws IllegalArgumentException for an invalid value, or a change that would add or remove the
   *     first-moment buffer (inner momentum, base momentum switched on or off)
   */
  public void setHyperparameters(String group, Hyperparameters hp) {
    hp.validate(variant);
    lock.writeLock().lock();
    try {
      GroupRuntime g = groups[layout.group(group)];
      FirstMoment.requireSame(update, group, g.hp, hp);
      g.hp = hp;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Completed steps. */
  public long stepCount() {
    lock.readLock().lock();
    try {
      return stepCountLocked();
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Whether {@link #setInitialValues} has run. */
  public boolean isInitialized() {
    lock.readLock().lock();
    try {
      return initialized;
    } finally {
      lock.readLock().unlock();
    }
  }

  /** A deep copy of everything an exact resume needs, taken between two steps. */
  public OptimizerState exportState() {
    lock.readLock().lock();
    try {
      return StateTransfer.export(variant, layout, buffers, groups, initialized);
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * Rebuilds an optimizer from an exported state; continuing it is bit-identical to not stopping.
   *
   * @throws IllegalArgumentException for an inconsistent state (sizes, missing moments, groups)
   */
  public static ScheduleFreeOptimizer fromState(OptimizerState state, int threads) {
    List<GroupSpec> specs = new ArrayList<>();
    for (OptimizerState.GroupState g : state.groups()) {
      specs.add(g.spec());
    }
    ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            state.variant(), new Layout(state.tensors(), specs), specs, threads);
    StateTransfer.restore(state, opt.layout, opt.buffers, opt.groups);
    opt.initialized = state.initialized();
    return opt;
  }

  /** Stops the (daemon) helper threads once no step or read runs; later calls then fail. */
  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      executor.close();
    } finally {
      lock.writeLock().unlock();
    }
  }

  private long stepCountLocked() {
    return groups[0].schedule.k();
  }

  private void requireInitialized() {
    if (!initialized) {
      throw new IllegalStateException("no initial values yet: call setInitialValues first");
    }
  }
}
