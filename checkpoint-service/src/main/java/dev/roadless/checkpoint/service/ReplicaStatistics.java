package dev.roadless.checkpoint.service;

import dev.roadless.common.bn.BatchNormProtos;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsResponse;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One trainer replica's BatchNorm statistics at x: per layer (network order) the count, mean and M2
 * per channel in double, and the {@code num_batches_tracked} its buffers ended with.
 *
 * @param replica the replica index the trainer trains as
 * @param step the step whose x it used
 * @param batches batches it forwarded
 * @param layers statistics by BatchNorm module name, network order
 * @param numBatchesTracked the replica's {@code num_batches_tracked} per module after the batches
 */
public record ReplicaStatistics(
    int replica,
    long step,
    int batches,
    Map<String, BatchNormStatistics> layers,
    Map<String, Long> numBatchesTracked) {
  public ReplicaStatistics {
    layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
    numBatchesTracked = Map.copyOf(numBatchesTracked);
    if (!numBatchesTracked.keySet().equals(layers.keySet())) {
      throw new IllegalArgumentException(
          "num_batches_tracked for " + numBatchesTracked.keySet() + ", layers " + layers.keySet());
    }
  }

  /**
   * Reads a trainer's answer.
   *
   * @throws IllegalArgumentException when the answer is inconsistent (a broken trainer)
   */
  public static ReplicaStatistics of(ComputeBatchNormStatisticsResponse r) {
    Map<String, BatchNormStatistics> layers = new LinkedHashMap<>();
    Map<String, Long> tracked = new LinkedHashMap<>();
    for (BatchNormLayerStatistics l : r.getLayersList()) {
      layers.put(l.getLayer(), BatchNormProtos.fromProto(l));
      tracked.put(l.getLayer(), l.getNumBatchesTracked());
    }
    return new ReplicaStatistics(r.getReplica(), r.getStep(), r.getBatches(), layers, tracked);
  }
}
