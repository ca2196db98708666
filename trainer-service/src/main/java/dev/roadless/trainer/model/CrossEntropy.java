package dev.roadless.trainer.model;

/** PyTorch's {@code cross_entropy(logits, labels)} with mean reduction, computed in double. */
public final class CrossEntropy {
  private CrossEntropy() {}

  /**
   * Mean over the batch of {@code logsumexp(logits_i) - logits_i[label_i]}.
   *
   * @param logits {@code [n, classes]} row-major
   * @param labels {@code n} class indices
   */
  public static double mean(float[] logits, int[] labels, int n) {
    if (n < 1 || logits.length % n != 0 || labels.length != n) {
      throw new IllegalArgumentException(
          logits.length + " logits and " + labels.length + " labels for a batch of " + n);
    }
    int k = logits.length / n;
    double total = 0;
    for (int i = 0; i < n; i++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < k; j++) {
        max = Math.max(max, logits[i * k + j]);
      }
      double sum = 0;
      for (int j = 0; j < k; j++) {
        sum += Math.exp(logits[i * k + j] - max);
      }
      total += max + Math.log(sum) - logits[i * k + labels[i]];
    }
    return total / n;
  }

  /** Index of the largest logit of row {@code i} (the first maximum wins). */
  public static int argmax(float[] logits, int classes, int i) {
    int best = 0;
    for (int j = 1; j < classes; j++) {
      if (logits[i * classes + j] > logits[i * classes + best]) {
        best = j;
      }
    }
    return best;
  }
}
