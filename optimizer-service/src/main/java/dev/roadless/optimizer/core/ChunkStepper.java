package dev.roadless.optimizer.core;

/**
 * Runs one step's kernels over one chunk. With one replica the kernel works on the state arrays
 * directly. With several, the chunk goes through small per-worker staging blocks: the state is
 * copied in, the replica mean is formed next to it, the kernel runs on the block, and everything is
 * copied back. Main-memory traffic stays one read and one write per array; the extra copies hit
 * L1/L2 only. (Indexing the mean at an offset instead would stop C2 from vectorizing the kernel.)
 */
final class ChunkStepper {
  /** Staging block: six arrays of this many floats stay well inside L2. */
  static final int BLOCK = 4096;

  private final Layout layout;
  private final TensorBuffers[] buffers;
  private final TensorBuffers[] stage;
  private final float[][] stageMean;
  private final float[][] stageY;

  ChunkStepper(Layout layout, TensorBuffers[] buffers, int workers) {
    this.layout = layout;
    this.buffers = buffers;
    int n = Math.min(BLOCK, layout.maxChunk());
    stage = new TensorBuffers[workers];
    stageMean = new float[workers][];
    stageY = new float[workers][];
    for (int w = 0; w < workers; w++) {
      stage[w] = TensorBuffers.allocate(n, true, true);
      stageMean[w] = new float[n];
      stageY[w] = new float[n];
    }
  }

  /** Applies {@code kernels[group of chunk c]} to chunk {@code c}. */
  void run(int worker, int c, float[][][] grads, float[][] ys, Kernel[] kernels) {
    int t = layout.chunkTensor[c];
    int from = layout.chunkFrom[c];
    int to = layout.chunkTo[c];
    Kernel kernel = kernels[layout.groupOfTensor[t]];
    float[][] replicas = grads[t];
    if (replicas.length == 1) {
      kernel.apply(buffers[t], replicas[0], ys[t], from, to);
      return;
    }
    TensorBuffers b = buffers[t];
    TensorBuffers s = stage[worker];
    TensorBuffers view =
        new TensorBuffers(s.z, s.x, b.v == null ? null : s.v, b.m == null ? null : s.m);
    for (int at = from; at < to; at += BLOCK) {
      int n = Math.min(BLOCK, to - at);
      copy(b, at, view, 0, n);
      ReplicaMean.into(replicas, at, at + n, stageMean[worker]);
      float[] y = ys[t] == null ? null : stageY[worker];
      kernel.apply(view, stageMean[worker], y, 0, n);
      copy(view, 0, b, at, n);
      if (y != null) {
        System.arraycopy(y, 0, ys[t], at, n);
      }
    }
  }

  private static void copy(TensorBuffers src, int from, TensorBuffers dst, int to, int n) {
    System.arraycopy(src.z, from, dst.z, to, n);
    System.arraycopy(src.x, from, dst.x, to, n);
    if (src.v != null) {
      System.arraycopy(src.v, from, dst.v, to, n);
    }
    if (src.m != null) {
      System.arraycopy(src.m, from, dst.m, to, n);
    }
  }
}
