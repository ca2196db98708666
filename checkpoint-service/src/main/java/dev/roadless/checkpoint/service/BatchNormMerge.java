package dev.roadless.checkpoint.service;

import dev.roadless.checkpoint.format.Tensor;
import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormProtos;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;
import java.util.ArrayList;
import java.util.List;

/**
 * Merges the trainer replicas' BatchNorm statistics into one set of PyTorch buffers per layer, with
 * Chan et al.'s exact formula in double ({@link BatchNormStatistics#merge}, ALGORITHM.md section
 * 5), in replica-list order so the result does not depend on which answer came first.
 *
 * <p>PRECISE answers are exact statistics of disjoint samples, so the merge equals one process over
 * all of them up to double rounding. EMA answers are estimates in the same form (mean = running
 * mean, M2 = running_var*(count-1)); merging them weights each replica by its count and adds the
 * spread between the replicas' means.
 */
public final class BatchNormMerge {
  private BatchNormMerge() {}

  /**
   * One layer's merged statistics and the {@code num_batches_tracked} to write.
   *
   * @param layer the BatchNorm module name
   * @param statistics count, mean and M2 over every replica
   * @param numBatchesTracked EMA: the largest of the replicas' counters (training steps plus the
   *     warmup batches, as one process would have); PRECISE: the batches forwarded in all
   */
  public record Layer(String layer, BatchNormStatistics statistics, long numBatchesTracked) {
    /** {@code running_mean} and {@code running_var = M2/(count-1)}, rounded once to float32. */
    public BatchNormBuffers buffers() {
      return statistics.toBuffers(numBatchesTracked, BatchNormBuffers.DEFAULT_MOMENTUM);
    }
  }

  /**
   * Merges the replicas' answers.
   *
   * @throws IllegalArgumentException when the answers disagree on the layers or channels (trainers
   *     running different models)
   */
  public static List<Layer> merge(BatchNormMode mode, List<ReplicaStatistics> parts) {
    if (parts.isEmpty()) {
      return List.of();
    }
    List<String> names = List.copyOf(parts.get(0).layers().keySet());
    List<Layer> out = new ArrayList<>();
    for (String name : names) {
      BatchNormStatistics merged = null;
      long tracked = 0;
      for (ReplicaStatistics p : parts) {
        if (!List.copyOf(p.layers().keySet()).equals(names)) {
          throw new IllegalArgumentException(
              "replica "
                  + p.replica()
                  + " has BatchNorm layers "
                  + p.layers().keySet()
                  + ", replica "
                  + parts.get(0).replica()
                  + " has "
                  + names);
        }
        BatchNormStatistics s = p.layers().get(name);
        merged = merged == null ? s : BatchNormStatistics.merge(merged, s);
        tracked =
            mode == BatchNormMode.BATCH_NORM_MODE_PRECISE
                ? tracked + p.batches()
                : Math.max(tracked, p.numBatchesTracked().get(name));
      }
      out.add(new Layer(name, merged, tracked));
    }
    return out;
  }

  /** The merged statistics in the form Evaluate takes. */
  public static List<BatchNormLayerStatistics> toProto(List<Layer> layers) {
    List<BatchNormLayerStatistics> out = new ArrayList<>();
    for (Layer l : layers) {
      out.add(BatchNormProtos.toProto(l.layer(), l.statistics(), l.numBatchesTracked()));
    }
    return out;
  }

  /**
   * The PyTorch buffers of every layer as tensors: {@code <layer>.running_mean}, {@code
   * <layer>.running_var} (float32 [C], unbiased variance) and {@code <layer>.num_batches_tracked}
   * (int64 scalar).
   */
  public static List<Tensor> tensors(List<Layer> layers) {
    List<Tensor> out = new ArrayList<>();
    for (Layer l : layers) {
      BatchNormBuffers b = l.buffers();
      long[] shape = {b.channels()};
      out.add(Tensor.ofFloats(l.layer() + ".running_mean", shape, b.runningMean()));
      out.add(Tensor.ofFloats(l.layer() + ".running_var", shape, b.runningVar()));
      out.add(Tensor.ofLongScalar(l.layer() + ".num_batches_tracked", b.numBatchesTracked()));
    }
    return out;
  }
}
