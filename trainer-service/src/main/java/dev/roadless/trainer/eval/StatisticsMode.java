package dev.roadless.trainer.eval;

/** How {@link BatchNormRecalibration} rebuilds BatchNorm statistics at given weights. */
public enum StatisticsMode {
  /**
   * The authors' recipe: forward the batches in training mode without gradients, so the running
   * buffers follow an exponential moving average (momentum 0.1 by default). The average either
   * continues from the model's current buffers (upstream README) or restarts from mean 0, var 1.
   * With 50 batches the old statistics keep a weight of 0.9^50, about 0.5%.
   */
  EMA,
  /**
   * Exact statistics pooled over every sample of every batch (count, mean, M2 merged with Chan's
   * formula in double). Partial results from replicas merge exactly; {@code running_var} is the
   * unbiased variance of all samples together.
   */
  PRECISE,
  /**
   * PyTorch's {@code momentum=None} (as in {@code torch.optim.swa_utils.update_bn}): reset the
   * buffers, then average the per-batch means and unbiased variances with equal weight. Equals
   * PRECISE in the mean for equal batch sizes, but its variance omits the spread between the batch
   * means.
   */
  CUMULATIVE
}
