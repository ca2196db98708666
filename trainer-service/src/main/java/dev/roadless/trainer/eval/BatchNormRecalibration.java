package dev.roadless.trainer.eval;

import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.model.Model;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Rebuilds BatchNorm statistics at given weights (typically Schedule-Free's x, where no training
 * pass ever ran; ALGORITHM.md section 5). Works on a copy of the model: the training model's
 * parameters and buffers are never touched.
 */
public final class BatchNormRecalibration {
  private BatchNormRecalibration() {}

  /** Options: the mode, and for EMA the momentum and whether to restart from fresh buffers. */
  public record Options(StatisticsMode mode, double momentum, boolean restart) {
    public Options {
      if (mode == null) {
        throw new IllegalArgumentException("mode is required");
      }
      if (!(momentum > 0 && momentum <= 1)) {
        throw new IllegalArgumentException("momentum must be in (0, 1], got " + momentum);
      }
    }

    /** EMA with momentum 0.1 continuing from the current buffers (the upstream README). */
    public static Options emaContinue() {
      return new Options(StatisticsMode.EMA, BatchNormBuffers.DEFAULT_MOMENTUM, false);
    }

    /** EMA with momentum 0.1 from fresh buffers (mean 0, var 1, count 0). */
    public static Options emaRestart() {
      return new Options(StatisticsMode.EMA, BatchNormBuffers.DEFAULT_MOMENTUM, true);
    }

    public static Options precise() {
      return new Options(StatisticsMode.PRECISE, BatchNormBuffers.DEFAULT_MOMENTUM, true);
    }

    public static Options cumulative() {
      return new Options(StatisticsMode.CUMULATIVE, BatchNormBuffers.DEFAULT_MOMENTUM, true);
    }
  }

  /**
   * Forwards {@code batches} in training mode without gradients through a copy of {@code model}
   * holding {@code weights} and returns the statistics of every BatchNorm module.
   *
   * @param model the training model; only read
   * @param weights the weights to use (PyTorch layout; any subset, the rest from {@code model})
   * @param batches at least one batch; each example count at least 2
   */
  public static RecomputedStatistics recompute(
      Model model, Map<String, float[]> weights, List<Batch> batches, Options options) {
    if (batches.isEmpty()) {
      throw new IllegalArgumentException("need at least one batch");
    }
    Model work = model.copy();
    work.setParameters(weights);
    Map<String, BatchNormBuffers> start = work.batchNormBuffers();
    Map<String, BatchNormBuffers> initial = new LinkedHashMap<>();
    start.forEach(
        (name, b) -> {
          BatchNormBuffers s =
              switch (options.mode()) {
                case EMA -> b.withMomentum(options.momentum());
                case CUMULATIVE, PRECISE -> b.withMomentum(null);
              };
          if (options.mode() != StatisticsMode.EMA || options.restart()) {
            s.reset();
          }
          initial.put(name, s);
        });
    work.setBatchNormBuffers(initial);

    Map<String, BatchNormStatistics> pooled = new LinkedHashMap<>();
    for (Batch b : batches) {
      work.observeBatch(b.inputs(), b.size())
          .forEach((name, s) -> pooled.merge(name, s, BatchNormStatistics::merge));
    }

    Map<String, BatchNormStatistics> stats = new LinkedHashMap<>();
    Map<String, BatchNormBuffers> buffers = new LinkedHashMap<>();
    Map<String, BatchNormBuffers> observed = work.batchNormBuffers();
    for (Map.Entry<String, BatchNormStatistics> e : pooled.entrySet()) {
      String name = e.getKey();
      BatchNormStatistics exact = e.getValue();
      Double trainingMomentum = start.get(name).momentum();
      BatchNormBuffers after = observed.get(name);
      if (options.mode() == StatisticsMode.PRECISE) {
        stats.put(name, exact);
        buffers.put(name, exact.toBuffers(batches.size(), trainingMomentum));
      } else {
        stats.put(
            name,
            BatchNormStatistics.fromRunningBuffers(
                exact.count(), after.runningMean(), after.runningVar()));
        buffers.put(name, after.withMomentum(trainingMomentum));
      }
    }
    return new RecomputedStatistics(options.mode(), batches.size(), stats, buffers);
  }
}
