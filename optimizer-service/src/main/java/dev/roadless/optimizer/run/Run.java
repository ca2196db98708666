package dev.roadless.optimizer.run;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * One training run on the server: the Schedule-Free state plus the protocol around it (SYNC
 * averaging, ASYNC staleness, idempotent pushes, waiting for a step). Thread-safe; every mutation
 * happens under one lock and either completes or changes nothing.
 */
public final class Run {
  /** ASYNC answers remembered per replica for idempotent re-sends. */
  private static final int ASYNC_MEMORY = 256;

  private final String id;
  private final RunSpec spec;
  private final List<String> names;
  private final long[] sizes;
  private final ScheduleFreeOptimizer optimizer;
  private final Object lock = new Object();
  private final float[][][] pending;
  private final YSink[] pendingSinks;

  /**
   * SYNC pushes still in their replicas' shared-memory segments (checked, not copied): a replica is
   * pending when it has arrays in {@link #pending} or a gradient here.
   */
  private final SharedGradient[] pendingShared;

  /** Whether each pending gradient is {@link dev.roadless.optimizer.core.Finite#bounded}. */
  private final boolean[] pendingBounded;

  private final Map<Integer, LinkedHashMap<Long, PushResult>> asyncAnswers = new HashMap<>();
  private final TreeMap<Long, CompletableFuture<Long>> waiters = new TreeMap<>();
  private final Map<String, LongAdder> refused = new ConcurrentHashMap<>();
  private final java.util.concurrent.ConcurrentLinkedDeque<float[][]> freeBuffers =
      new java.util.concurrent.ConcurrentLinkedDeque<>();

  private final TrainArrays yArrays;

  private byte[] initialDigest;
  private long step;
  private ParameterSnapshot train;

  Run(String id, RunSpec spec, ScheduleFreeOptimizer optimizer, byte[] initialDigest) {
    this.id = id;
    this.spec = spec;
    this.names = spec.getTensorsList().stream().map(t -> t.getName()).toList();
    this.sizes = spec.getTensorsList().stream().mapToLong(SpecMapping::numel).toArray();
    this.optimizer = optimizer;
    this.pending = new float[spec.getReplicas()][][];
    this.pendingSinks = new YSink[spec.getReplicas()];
    this.pendingBounded = new boolean[spec.getReplicas()];
    this.pendingShared = new SharedGradient[spec.getReplicas()];
    if (!optimizer.tensors().stream().map(t -> t.name()).toList().equals(names)) {
      throw new IllegalStateException("the optimizer's tensors are not in spec order");
    }
    this.initialDigest = initialDigest;
    this.yArrays = new TrainArrays(names, sizes);
    this.step = optimizer.stepCount();
    if (initialDigest != null) {
      this.train = readTrain();
    }
  }

  public String id() {
    return id;
  }

  /** The spec with every default filled in. */
  public RunSpec spec() {
    return spec;
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
   * Stores the initial values once. Repeating the identical upload is a no-op (returns false); a
   * different one is refused.
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
      optimizer.setInitialValues(byName(values));
      initialDigest = digest;
      publish(readTrain());
      return true;
    }
  }

  /**
   * Gradient arrays for one push, recycled: a 10M-parameter push would otherwise allocate (and
   * zero) 40 MB every time. Give them back with {@link #releaseBuffers} if the push fails; a push
   * handed to {@link #push} is released by the run.
   */
  public float[][] acquireBuffers() {
    float[][] b = freeBuffers.poll();
    if (b != null) {
      return b;
    }
    float[][] fresh = new float[sizes.length][];
    for (int t = 0; t < fresh.length; t++) {
      fresh[t] = new float[(int) sizes[t]];
    }
    return fresh;
  }

  /** Returns arrays from {@link #acquireBuffers}; keeps at most R + 1 sets. */
  public void releaseBuffers(float[][] buffers) {
    if (buffers != null && freeBuffers.size() <= pending.length) {
      freeBuffers.push(buffers);
    }
  }

  /**
   * Refuses a push early, before its data arrives, if its replica or step can never be accepted.
   */
  public void checkPush(int replica, long pushStep) {
    checkReplica(replica);
    synchronized (lock) {
      requireInitialized();
      checkNotFuture(pushStep);
    }
  }

  /**
   * Takes one replica's mean gradient computed at y_{pushStep}. Every element must already have
   * been checked finite (the server does so chunk by chunk as the push arrives), so the step skips
   * a second scan; a SYNC mean of several replicas is checked unless all are {@code bounded}.
   *
   * @param bounded every element passed {@link dev.roadless.optimizer.core.Finite#bounded}; false
   *     when unknown
   * @param sink if this push takes part in a step, sees that step's y as the kernel writes it (see
   *     {@link YSink}); a push answered as a duplicate, or refused, never calls it. May be null.
   */
  public PushResult push(
      int replica, long pushStep, float[][] gradient, boolean bounded, YSink sink) {
    checkReplica(replica);
    synchronized (lock) {
      requireInitialized();
      checkNotFuture(pushStep);
      return spec.getMode() == StepMode.STEP_MODE_ASYNC
          ? pushAsync(replica, pushStep, gradient, sink)
          : pushSync(replica, pushStep, gradient, bounded, sink);
    }
  }

  /**
   * A gradient still in a replica's shared-memory segment, which the run reads in one of the forms
   * below (see {@link #pushShared}). Each checks every value it reads and throws a {@link
   * RoadlessException}, having kept nothing, when one is not finite; the two means also when the
   * mean is not (finite gradients whose sum overflows: {@link #meanOverflows}).
   */
  public interface SharedGradient {
    /**
     * Copies the gradient into {@code into} (the run's arrays, spec order); returns whether every
     * element is {@link dev.roadless.optimizer.core.Finite#bounded}.
     */
    boolean copyInto(float[][] into);

    /**
     * Writes the SYNC mean of one or two replicas into {@code out}: every element summed left to
     * right in replica order in float32 (this replica's value read from the segment, the others'
     * from {@code others[r]}; {@code others[self]} is null), then divided by R in float32, exactly
     * as {@code ReplicaAverage} does.
     */
    void meanInto(float[][][] others, int self, float[][] out);

    /**
     * Checks every element where it is, without a copy; the run then keeps this gradient pending in
     * the segment and reads it once, for the mean, when the step completes.
     */
    void checkInPlace();

    /**
     * Writes the SYNC mean of two replicas, this one and {@code other} (both still in their
     * segments), into {@code out}, bit-identical to {@code ReplicaAverage}; checks the mean.
     */
    void meanWith(SharedGradient other, float[][] out);
  }

  /**
   * A push whose gradient is in shared memory. SYNC with one or two replicas: the push that
   * completes a step forms the mean straight from the segments (one pass, under the run's lock); an
   * earlier push is only checked where it lies, outside the lock while the other replica is still
   * writing, and stays pending in its segment. Otherwise (ASYNC, more replicas) the gradient is
   * copied out and checked first, outside the lock, and pushed as {@link #push} does.
   */
  public PushResult pushShared(int replica, long pushStep, SharedGradient gradient, YSink sink) {
    checkReplica(replica);
    boolean sync = spec.getMode() == StepMode.STEP_MODE_SYNC;
    if (sync && pending.length <= 2) {
      synchronized (lock) {
        requireInitialized();
        checkNotFuture(pushStep);
        if (pushStep < step || isPending(replica)) {
          return pushSync(replica, pushStep, null, true, sink); // a duplicate: nothing read
        }
        if (othersPending(replica)) {
          return completeShared(replica, pushStep, gradient, sink);
        }
      }
      gradient.checkInPlace();
      synchronized (lock) {
        requireInitialized();
        checkNotFuture(pushStep);
        if (pushStep < step || isPending(replica)) {
          return pushSync(replica, pushStep, null, true, sink);
        }
        if (othersPending(replica)) {
          return completeShared(replica, pushStep, gradient, sink); // it arrived meanwhile
        }
        pendingShared[replica] = gradient;
        pendingSinks[replica] = sink;
        return new PushResult(false, pushStep, pushStep, step, false);
      }
    }
    float[][] copy = acquireBuffers();
    boolean bounded;
    try {
      bounded = gradient.copyInto(copy);
    } catch (RuntimeException e) {
      releaseBuffers(copy);
      throw e;
    }
    return push(replica, pushStep, copy, bounded, sink);
  }

  /** Under the lock: the last of at most two SYNC pushes, read from its segment into the mean. */
  private PushResult completeShared(
      int replica, long pushStep, SharedGradient gradient, YSink sink) {
    float[][] mean = acquireBuffers();
    try {
      SharedGradient other = pending.length == 2 ? pendingShared[1 - replica] : null;
      if (other != null) {
        gradient.meanWith(other, mean);
      } else {
        gradient.meanInto(pending, replica, mean);
      }
    } catch (RuntimeException e) {
      releaseBuffers(mean);
      throw e;
    }
    pendingSinks[replica] = sink;
    return applySync(pushStep, mean);
  }

  private boolean isPending(int replica) {
    return pending[replica] != null || pendingShared[replica] != null;
  }

  private boolean othersPending(int replica) {
    for (int r = 0; r < pending.length; r++) {
      if (r != replica && !isPending(r)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Receives y of the step a push took part in while the step runs: {@link #range} on the kernel's
   * threads (concurrently, under the run's lock) for every chunk as soon as its y is written, then
   * {@link #written} with the step's number once the step is applied. The server uses it to put y
   * into a replica's shared-memory segment while it is still in cache. Must be quick; a sink that
   * throws is ignored from then on, and must remember that itself.
   */
  public interface YSink {
    /** Elements [from, to) of tensor {@code tensor} (spec order) of {@code y} are final. */
    void range(float[][] y, int tensor, int from, int to);

    /** The step is applied; every range went through {@link #range}: y is y_{step}. */
    void written(long step);
  }

  /** Throws REPLICA_OUT_OF_RANGE unless {@code 0 <= replica < replicas}. */
  public void checkReplica(int replica) {
    if (replica < 0 || replica >= pending.length) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_REPLICA_OUT_OF_RANGE,
              "replica " + replica + " is outside [0, " + pending.length + ")")
          .with("run_id", id)
          .with("replica", replica)
          .build();
    }
  }

  private void checkNotFuture(long pushStep) {
    if (pushStep > step) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_STEP_IN_FUTURE,
              "push for step " + pushStep + " but run '" + id + "' has completed " + step)
          .with("run_id", id)
          .with("step", pushStep)
          .with("current_step", step)
          .build();
    }
  }

  private PushResult pushSync(
      int replica, long pushStep, float[][] gradient, boolean bounded, YSink sink) {
    if (pushStep < step) {
      // Every replica contributed to every completed SYNC step: this is a re-send.
      releaseBuffers(gradient);
      return new PushResult(true, pushStep, pushStep, step, true);
    }
    if (isPending(replica)) {
      releaseBuffers(gradient);
      return new PushResult(false, pushStep, pushStep, step, true);
    }
    if (!othersPending(replica)) {
      pending[replica] = gradient;
      pendingBounded[replica] = bounded;
      pendingSinks[replica] = sink;
      return new PushResult(false, pushStep, pushStep, step, false);
    }
    // The last push. A replica still pending in its segment is read now (copied and checked);
    // should that fail (it wrote the segment after its push), this push is refused.
    for (int r = 0; r < pending.length; r++) {
      if (pendingShared[r] != null) {
        float[][] copy = acquireBuffers();
        try {
          pendingBounded[r] = pendingShared[r].copyInto(copy);
        } catch (RuntimeException e) {
          releaseBuffers(copy);
          releaseBuffers(gradient);
          throw e;
        }
        pending[r] = copy;
        pendingShared[r] = null;
      }
    }
    pending[replica] = gradient;
    pendingBounded[replica] = bounded;
    pendingSinks[replica] = sink;
    if (pending.length == 1) {
      return applySync(pushStep, gradient); // the mean of one is the gradient, checked on arrival
    }
    boolean check = false;
    for (boolean b : pendingBounded) {
      check |= !b;
    }
    // Bounded gradients cannot overflow: the mean goes into replica 0's arrays (released with the
    // step). Otherwise into arrays of its own, so a refusal leaves every pending gradient intact.
    float[][] mean = check ? acquireBuffers() : pending[0];
    long overflow = ReplicaAverage.into(optimizer, pending, mean, check);
    if (overflow != ReplicaAverage.FINITE) {
      // Every gradient is finite, their sum is not: refuse the push that completed the step and
      // keep the others, as for a non-finite push.
      releaseBuffers(mean);
      pending[replica] = null;
      pendingSinks[replica] = null;
      releaseBuffers(gradient);
      throw meanOverflows(overflow);
    }
    return applySync(pushStep, mean);
  }

  /**
   * The refusal of a push whose gradient is finite but makes the replicas' mean infinite, at {@code
   * tensorAndElement} ({@code tensor << 32 | element}).
   */
  public RoadlessException meanOverflows(long tensorAndElement) {
    String tensor = names.get((int) (tensorAndElement >>> 32));
    int element = (int) tensorAndElement;
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT,
            "tensor '"
                + tensor
                + "' element "
                + element
                + ": every replica's gradient is finite, but their float32 sum overflows, so"
                + " their mean is not finite")
        .with("run_id", id)
        .with("tensor", tensor)
        .with("element", element)
        .build();
  }

  /**
   * Applies the SYNC step with {@code mean} (replica 0's arrays, or arrays of its own) and releases
   * every replica's arrays and {@code mean}, whatever happens.
   */
  private PushResult applySync(long pushStep, float[][] mean) {
    try {
      Map<String, float[][]> byTensor = new LinkedHashMap<>();
      for (int t = 0; t < names.size(); t++) {
        byTensor.put(names.get(t), new float[][] {mean[t]});
      }
      applyStep(byTensor, Arrays.stream(pendingSinks).filter(s -> s != null).toList());
    } finally {
      boolean meanIsPending = false;
      for (float[][] g : pending) {
        meanIsPending |= g == mean;
        releaseBuffers(g);
      }
      if (!meanIsPending) {
        releaseBuffers(mean);
      }
      Arrays.fill(pending, null);
      Arrays.fill(pendingShared, null);
      Arrays.fill(pendingSinks, null);
    }
    return new PushResult(true, pushStep, pushStep, step, false);
  }

  private PushResult pushAsync(int replica, long pushStep, float[][] gradient, YSink sink) {
    LinkedHashMap<Long, PushResult> answers =
        asyncAnswers.computeIfAbsent(
            replica,
            r ->
                new LinkedHashMap<>() {
                  @Override
                  protected boolean removeEldestEntry(Map.Entry<Long, PushResult> eldest) {
                    return size() > ASYNC_MEMORY;
                  }
                });
    PushResult earlier = answers.get(pushStep);
    if (earlier != null) {
      releaseBuffers(gradient);
      return earlier.asDuplicate(step);
    }
    if (step - pushStep > spec.getMaxStaleness()) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_STEP_STALE,
              "push for step "
                  + pushStep
                  + " is "
                  + (step - pushStep)
                  + " steps old; max_staleness is "
                  + spec.getMaxStaleness())
          .with("run_id", id)
          .with("step", pushStep)
          .with("current_step", step)
          .build();
    }
    Map<String, float[][]> byTensor = new LinkedHashMap<>();
    for (int t = 0; t < names.size(); t++) {
      byTensor.put(names.get(t), new float[][] {gradient[t]});
    }
    long appliedAs = step;
    try {
      applyStep(byTensor, sink == null ? List.of() : List.of(sink));
    } finally {
      releaseBuffers(gradient);
    }
    PushResult result = new PushResult(true, pushStep, appliedAs, step, false);
    answers.put(pushStep, result);
    return result;
  }

  private void applyStep(Map<String, float[][]> byTensor, List<YSink> sinks) {
    // The fused pass writes every element of y, so recycled arrays need no clearing.
    float[][] y = yArrays.take();
    Map<String, float[]> yOut = new LinkedHashMap<>();
    for (int t = 0; t < y.length; t++) {
      yOut.put(names.get(t), y[t]);
    }
    try {
      // Every gradient was checked finite chunk by chunk on arrival (ChunkAssembler).
      step =
          sinks.isEmpty()
              ? optimizer.stepFiniteGradients(byTensor, yOut)
              : optimizer.stepFiniteGradients(
                  byTensor, yOut, (t, from, to) -> toSinks(sinks, y, t, from, to));
    } catch (RuntimeException e) {
      yArrays.give(y); // nothing was published; the arrays are still ours
      throw e;
    }
    publish(yArrays.snapshot(step, y));
    for (YSink s : sinks) {
      try {
        s.written(step);
      } catch (RuntimeException e) {
        // the sink's own business; the step stands
      }
    }
    completeWaiters();
  }

  /** Never throws: a failing sink must not stop the kernel half-way through the state. */
  private static void toSinks(List<YSink> sinks, float[][] y, int t, int from, int to) {
    for (YSink s : sinks) {
      try {
        s.range(y, t, from, to);
      } catch (RuntimeException | InternalError e) {
        // InternalError: a fault in mapped memory (for example a full tmpfs)
      }
    }
  }

  /** Makes {@code next} the current TRAIN snapshot and drops the run's hold on the previous one. */
  private void publish(ParameterSnapshot next) {
    ParameterSnapshot previous = train;
    train = next;
    if (previous != null) {
      previous.release();
    }
  }

  /**
   * Every tensor of a sequence, all from one step. A TRAIN snapshot returned here is never
   * recycled; streams should use {@link #acquireParameters} instead.
   */
  public ParameterSnapshot parameters(Sequence sequence) {
    synchronized (lock) {
      requireInitialized();
      if (sequence != Sequence.TRAIN) {
        return read(sequence);
      }
      train.pin();
      return train;
    }
  }

  /**
   * Every tensor of a sequence, all from one step, held for the caller until it calls {@link
   * ParameterSnapshot#release} (once, when it no longer reads the arrays).
   */
  public ParameterSnapshot acquireParameters(Sequence sequence) {
    synchronized (lock) {
      requireInitialized();
      if (sequence != Sequence.TRAIN) {
        return read(sequence);
      }
      // The run holds the current snapshot, so this cannot come too late.
      if (!train.retain()) {
        throw new IllegalStateException("current TRAIN snapshot was released");
      }
      return train;
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
      if (step >= minStep) {
        return CompletableFuture.completedFuture(step);
      }
      return waiters.computeIfAbsent(minStep, s -> new CompletableFuture<>());
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
      all = new ArrayList<>(waiters.values());
      waiters.clear();
    }
    all.forEach(f -> f.completeExceptionally(cause));
  }

  /** Counts a refused push by reason, for status and metrics. */
  public void countRefusal(ErrorReason reason) {
    refused
        .computeIfAbsent(reason.name().replaceFirst("^ERROR_REASON_", ""), r -> new LongAdder())
        .increment();
  }

  public Map<String, Long> refusals() {
    Map<String, Long> out = new TreeMap<>();
    refused.forEach((k, v) -> out.put(k, v.sum()));
    return out;
  }

  /** SYNC: the replicas whose push for the current step has arrived. */
  public List<Integer> pendingReplicas() {
    synchronized (lock) {
      List<Integer> out = new ArrayList<>();
      for (int r = 0; r < pending.length; r++) {
        if (isPending(r)) {
          out.add(r);
        }
      }
      return out;
    }
  }

  /** A consistent copy of the full state, for snapshots and export. */
  public RunSnapshot snapshot() {
    synchronized (lock) {
      requireInitialized();
      return new RunSnapshot(id, spec, initialDigest.clone(), optimizer.exportState());
    }
  }

  /** Applies a change of hyperparameters from the next step on. */
  public void updateHyperparameters(
      String group, dev.roadless.proto.optimizer.v1.Hyperparameters change, long expectedStep) {
    synchronized (lock) {
      if (expectedStep > 0 && expectedStep != step) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_STEP_MISMATCH,
                "run '" + id + "' is at step " + step + ", not " + expectedStep)
            .with("run_id", id)
            .with("step", expectedStep)
            .with("current_step", step)
            .build();
      }
      SpecMapping.updateGroup(this, group, change);
    }
  }

  private void completeWaiters() {
    List<CompletableFuture<Long>> ready = new ArrayList<>();
    while (!waiters.isEmpty() && waiters.firstKey() <= step) {
      ready.add(waiters.pollFirstEntry().getValue());
    }
    long now = step;
    ready.forEach(f -> f.complete(now));
  }

  private ParameterSnapshot readTrain() {
    float[][] y = yArrays.take();
    Map<String, float[]> out = new LinkedHashMap<>();
    for (int t = 0; t < y.length; t++) {
      out.put(names.get(t), y[t]);
    }
    return yArrays.snapshot(optimizer.read(Sequence.TRAIN, out), y);
  }

  private ParameterSnapshot read(Sequence sequence) {
    Map<String, float[]> out = new LinkedHashMap<>();
    float[][] values = new float[names.size()][];
    for (int t = 0; t < values.length; t++) {
      values[t] = new float[(int) sizes[t]];
      out.put(names.get(t), values[t]);
    }
    long at = optimizer.read(sequence, out);
    return new ParameterSnapshot(at, sequence, names, values);
  }

  private void requireInitialized() {
    if (initialDigest == null) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_INITIAL_VALUES_MISSING,
              "run '" + id + "' has no initial values yet")
          .with("run_id", id)
          .build();
    }
  }

  private Map<String, float[]> byName(float[][] values) {
    Map<String, float[]> map = new LinkedHashMap<>();
    for (int t = 0; t < names.size(); t++) {
      map.put(names.get(t), values[t]);
    }
    return map;
  }

  /** State for snapshots and export: the spec, the initial-values digest and the optimizer. */
  public record RunSnapshot(String id, RunSpec spec, byte[] initialDigest, OptimizerState state) {}
}
