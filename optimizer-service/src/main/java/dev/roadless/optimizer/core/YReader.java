package dev.roadless.optimizer.core;

/**
 * y of one step, derived range by range from x and z as {@link ScheduleFreeOptimizer#read(Sequence,
 * float[][])} derives it (bit for bit the kernel's y), with each group's beta as it was when the
 * reader was made. It reads the live state arrays and takes no lock: the caller guarantees that no
 * step (nothing that writes x or z) runs while it reads, and stops using it before the next one.
 * The server's TRAIN snapshots are such views, detached before each step.
 */
public final class YReader {
  private final BaseUpdate update;
  private final TensorBuffers[] buffers;
  private final double[] beta;
  private final boolean[] copyX;
  private final long step;

  YReader(BaseUpdate update, TensorBuffers[] buffers, double[] beta, boolean[] copyX, long step) {
    this.update = update;
    this.buffers = buffers;
    this.beta = beta;
    this.copyX = copyX;
    this.step = step;
  }

  static YReader of(
      BaseUpdate update, Layout layout, TensorBuffers[] buffers, GroupRuntime[] groups, long k) {
    double[] beta = new double[buffers.length];
    boolean[] copyX = new boolean[buffers.length];
    for (int t = 0; t < buffers.length; t++) {
      Schedule s = groups[layout.groupOfTensor[t]].schedule;
      copyX[t] = s.k() == 0;
      beta[t] = s.yBeta();
    }
    return new YReader(update, buffers, beta, copyX, k);
  }

  /** The completed steps this y belongs to. */
  public long step() {
    return step;
  }

  /** The number of tensors. */
  public int tensorCount() {
    return buffers.length;
  }

  /** Elements of tensor {@code tensor}. */
  public int length(int tensor) {
    return buffers[tensor].length();
  }

  /** Writes y of tensor {@code tensor}, elements {@code [from, from + n)}, to {@code dst[at..]}. */
  public void read(int tensor, int from, float[] dst, int at, int n) {
    TensorBuffers b = buffers[tensor];
    if (copyX[tensor]) {
      System.arraycopy(b.x, from, dst, at, n); // y = x = z exactly before a step
    } else {
      update.deriveY(b.x, b.z, from, from + n, dst, at, beta[tensor]);
    }
  }
}
