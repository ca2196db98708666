package dev.roadless.optimizer.core;

/**
 * Runs one step's kernels over one chunk, then hands the chunk's new y to the step's sinks while it
 * is still in this core's cache. The kernel works on the state arrays directly with one gradient: a
 * data-parallel mean is formed before the step ({@link ReplicaMean}), which keeps the kernel
 * vectorized and costs less than mixing replicas inside it.
 */
final class ChunkStepper {
  /** Elements per kernel call and check: 16 KiB per array. */
  static final int CHECK_BLOCK = 4096;

  private final Layout layout;
  private final TensorBuffers[] buffers;

  ChunkStepper(Layout layout, TensorBuffers[] buffers) {
    this.layout = layout;
    this.buffers = buffers;
  }

  /**
   * Applies {@code kernels[group of chunk c]} to chunk {@code c} and has {@code check} scan the
   * chunk's new state; never throws for a sink.
   */
  void run(
      int c, float[][] grads, float[][] ys, Kernel[] kernels, YSink[] sinks, StateCheck check) {
    int t = layout.chunkTensor[c];
    int from = layout.chunkFrom[c];
    int to = layout.chunkTo[c];
    Kernel kernel = kernels[layout.groupOfTensor[t]];
    // In blocks small enough that the state the kernel just wrote is still in L1/L2 when a separate
    // check reads it back (kernels that fold the check into their pass do not need that).
    for (int at = from; at < to; at += CHECK_BLOCK) {
      int end = Math.min(to, at + CHECK_BLOCK);
      if (!kernel.applyChecked(buffers[t], grads[t], ys[t], at, end)) {
        check.markBad(c);
      }
    }
    for (YSink sink : sinks) {
      try {
        sink.range(ys, t, from, to);
      } catch (RuntimeException | InternalError e) {
        // InternalError: a fault in mapped memory. The sink remembers; the step goes on.
      }
    }
  }
}
