package dev.roadless.optimizer.run;

/**
 * One replica's chunked push taking part in a pipelined SYNC step ({@link StepPipeline}): the
 * stream reports each chunk as it lands in the push's arrays, and whether the push was accepted or
 * went away. Every method takes the run's lock.
 */
public final class PipelinedPush {
  final StepPipeline pipeline;
  final int replica;
  final long step;
  final float[][] arrays;
  EarlyParameters early;
  boolean accepted;
  boolean earlyVoid;
  boolean sentEarly;
  boolean summed;

  PipelinedPush(StepPipeline pipeline, int replica, long step, int tensors, EarlyParameters early) {
    this.pipeline = pipeline;
    this.replica = replica;
    this.step = step;
    this.arrays = new float[tensors][];
    this.early = early;
  }

  /**
   * Elements {@code [from, to)} of tensor {@code tensor} are final (and finite) in {@code values}.
   */
  public void arrived(int tensor, int from, int to, float[] values) {
    synchronized (pipeline.lock) {
      pipeline.arrived(this, tensor, from, to, values);
    }
  }

  /**
   * The push's chunks go into its step's one set ({@link GradientSum}): reported ranges of that set
   * hold its values alone while the other replica's push keeps a set of its own; when every push of
   * the step is summed, the set is the mean and there is nothing to form.
   */
  public void summed() {
    synchronized (pipeline.lock) {
      summed = true;
    }
  }

  /** The run took the push (held for the step or completing it). */
  public void accepted() {
    synchronized (pipeline.lock) {
      accepted = true;
    }
  }

  /**
   * The push was refused or its stream went away: before it was accepted this voids the step's
   * pipeline (the step then runs whole, as without pipelining); after, only its early y stops.
   */
  public void leave() {
    synchronized (pipeline.lock) {
      pipeline.leave(this);
    }
  }

  /**
   * True once its step was applied through the pipeline and every range of the new y went to its
   * {@link EarlyParameters}: the answer then needs no chunks of its own.
   */
  public boolean sentEarly() {
    synchronized (pipeline.lock) {
      return sentEarly;
    }
  }

  /** The step this push is for. */
  public long step() {
    return step;
  }
}
