package dev.roadless.checkpoint.service;

import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsResponse;
import java.nio.ByteOrder;
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
    for (BatchNormLayerStatistics l : r.getLayersList()) {
      layers.put(
          l.getLayer(),
          BatchNormStatistics.of(
              l.getCount(),
              l.getMeanList().stream().mapToDouble(Double::doubleValue).toArray(),
              l.getM2List().stream().mapToDouble(Double::doubleValue).toArray()));
    }
    Map<String, Long> tracked = new LinkedHashMap<>();
    for (TensorChunk c : r.getBufferChunksList()) {
      String suffix = ".num_batches_tracked";
      if (c.getName().endsWith(suffix)) {
        if (c.getDtype() != DataType.DATA_TYPE_INT64 || c.getData().size() != 8) {
          throw new IllegalArgumentException(c.getName() + " is not an int64 scalar");
        }
        long v = c.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        tracked.put(c.getName().substring(0, c.getName().length() - suffix.length()), v);
      }
    }
    return new ReplicaStatistics(r.getReplica(), r.getStep(), r.getBatches(), layers, tracked);
  }
}
