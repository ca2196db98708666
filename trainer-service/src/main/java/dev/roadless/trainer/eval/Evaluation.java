package dev.roadless.trainer.eval;

import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.IdxDataset;
import dev.roadless.trainer.model.CrossEntropy;
import dev.roadless.trainer.model.Model;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Evaluates given weights with given BatchNorm statistics on a hold-out set (eval mode), on a copy
 * of the model.
 */
public final class Evaluation {
  private Evaluation() {}

  /**
   * Loss and accuracy.
   *
   * @param loss mean cross entropy over all examples (double)
   * @param accuracy fraction of examples whose largest logit is the label (first maximum wins)
   * @param examples examples evaluated
   */
  public record Result(double loss, double accuracy, int examples) {}

  /** Evaluates with PyTorch buffers. */
  public static Result evaluate(
      Model model,
      Map<String, float[]> weights,
      Map<String, BatchNormBuffers> buffers,
      IdxDataset data,
      int batchSize) {
    Model work = model.copy();
    work.setParameters(weights);
    work.setBatchNormBuffers(buffers);
    return evaluate(work, data, batchSize);
  }

  /**
   * Evaluates with (count, mean, M2) statistics, converted to buffers ({@code running_var =
   * M2/(count-1)}); every BatchNorm module must be covered.
   */
  public static Result evaluateWithStatistics(
      Model model,
      Map<String, float[]> weights,
      Map<String, BatchNormStatistics> statistics,
      IdxDataset data,
      int batchSize) {
    Map<String, BatchNormBuffers> buffers = new LinkedHashMap<>();
    for (String bn : model.batchNormLayers()) {
      BatchNormStatistics s = statistics.get(bn);
      if (s == null) {
        throw new IllegalArgumentException("no statistics for BatchNorm module " + bn);
      }
      buffers.put(bn, s.toBuffers(0, BatchNormBuffers.DEFAULT_MOMENTUM));
    }
    return evaluate(model, weights, buffers, data, batchSize);
  }

  /** Evaluates the model as it is (its own parameters and buffers). */
  public static Result evaluate(Model model, IdxDataset data, int batchSize) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
    }
    double lossSum = 0;
    int correct = 0;
    int classes = model.spec().classes();
    for (int from = 0; from < data.size(); from += batchSize) {
      Batch b = data.range(from, Math.min(data.size(), from + batchSize));
      float[] logits = model.evalLogits(b.inputs(), b.size());
      lossSum += CrossEntropy.mean(logits, b.labels(), b.size()) * b.size();
      for (int i = 0; i < b.size(); i++) {
        if (CrossEntropy.argmax(logits, classes, i) == b.labels()[i]) {
          correct++;
        }
      }
    }
    return new Result(lossSum / data.size(), (double) correct / data.size(), data.size());
  }
}
