package dev.roadless.trainer.data;

/**
 * Which examples replica r uses at step k: a pure function of (seed, k, r) for a fixed dataset size
 * N, global batch B and replica count R, so runs reproduce and a restarted replica resumes exactly
 * where it was.
 *
 * <p>Epoch e = k / S, with S = floor(N/B) steps per epoch (the last partial batch of an epoch is
 * dropped). Epoch e visits the examples in a permutation drawn from (seed, e) by a Fisher-Yates
 * shuffle driven by SplitMix64 (specified here, so any language can reproduce it). Step k uses
 * positions [(k mod S)*B, (k mod S + 1)*B) of that permutation, and replica r takes the r-th of R
 * equal consecutive parts of that window (B must be divisible by R). The replicas' slices are
 * disjoint and together are the global batch.
 *
 * <p>An instance caches the current epoch's permutation; it is not thread-safe.
 */
public final class Sharding {
  private final long seed;
  private final int datasetSize;
  private final int globalBatch;
  private final int replicas;
  private long cachedEpoch = -1;
  private int[] cachedPermutation;

  public Sharding(long seed, int datasetSize, int globalBatch, int replicas) {
    if (replicas < 1) {
      throw new IllegalArgumentException("replicas must be >= 1, got " + replicas);
    }
    if (globalBatch < replicas || globalBatch % replicas != 0) {
      throw new IllegalArgumentException(
          "global batch " + globalBatch + " must be a positive multiple of replicas " + replicas);
    }
    if (datasetSize < globalBatch) {
      throw new IllegalArgumentException(
          "dataset of " + datasetSize + " is smaller than the global batch " + globalBatch);
    }
    this.seed = seed;
    this.datasetSize = datasetSize;
    this.globalBatch = globalBatch;
    this.replicas = replicas;
  }

  /** One-off form of {@link #slice(long, int)}. */
  public static int[] slice(
      long seed, long step, int replica, int replicas, int globalBatch, int datasetSize) {
    return new Sharding(seed, datasetSize, globalBatch, replicas).slice(step, replica);
  }

  /** Steps per epoch, floor(N/B). */
  public int stepsPerEpoch() {
    return datasetSize / globalBatch;
  }

  /** Dataset indices of replica {@code replica}'s B/R examples at step {@code step}. */
  public int[] slice(long step, int replica) {
    if (step < 0) {
      throw new IllegalArgumentException("step must be >= 0, got " + step);
    }
    if (replica < 0 || replica >= replicas) {
      throw new IllegalArgumentException("replica " + replica + " outside [0, " + replicas + ")");
    }
    long epoch = step / stepsPerEpoch();
    int position = (int) (step % stepsPerEpoch());
    int[] perm = permutation(epoch);
    int share = globalBatch / replicas;
    int[] out = new int[share];
    System.arraycopy(perm, position * globalBatch + replica * share, out, 0, share);
    return out;
  }

  /** The whole global batch of a step: the replicas' slices concatenated in replica order. */
  public int[] globalBatch(long step) {
    int[] out = new int[globalBatch];
    int share = globalBatch / replicas;
    for (int r = 0; r < replicas; r++) {
      System.arraycopy(slice(step, r), 0, out, r * share, share);
    }
    return out;
  }

  private int[] permutation(long epoch) {
    if (epoch != cachedEpoch) {
      cachedPermutation = shuffle(datasetSize, mix(seed, epoch));
      cachedEpoch = epoch;
    }
    return cachedPermutation;
  }

  static int[] shuffle(int n, long state) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    SplitMix64 rng = new SplitMix64(state);
    for (int i = n - 1; i > 0; i--) {
      int j = (int) Long.remainderUnsigned(rng.next(), i + 1L);
      int t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  static long mix(long seed, long epoch) {
    return new SplitMix64(seed ^ new SplitMix64(epoch).next()).next();
  }

  /** Steele, Lea and Flood's SplitMix64. */
  private static final class SplitMix64 {
    private long state;

    SplitMix64(long seed) {
      this.state = seed;
    }

    long next() {
      long z = (state += 0x9E3779B97F4A7C15L);
      z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
      z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
      return z ^ (z >>> 31);
    }
  }
}
