package dev.roadless.common.bn;

import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;

/**
 * The one mapping between {@link BatchNormStatistics} and the wire's {@code
 * roadless.trainer.v1.BatchNormLayerStatistics} (count, per-channel mean and M2 as doubles, and the
 * {@code num_batches_tracked} of the answering replica), used by the trainers that compute and
 * apply statistics and by the checkpoint service that merges them.
 */
public final class BatchNormProtos {
  private BatchNormProtos() {}

  /** One layer's statistics on the wire. */
  public static BatchNormLayerStatistics toProto(
      String layer, BatchNormStatistics s, long numBatchesTracked) {
    BatchNormLayerStatistics.Builder b =
        BatchNormLayerStatistics.newBuilder()
            .setLayer(layer)
            .setCount(s.count())
            .setNumBatchesTracked(numBatchesTracked);
    for (double m : s.mean()) {
      b.addMean(m);
    }
    for (double m : s.m2()) {
      b.addM2(m);
    }
    return b.build();
  }

  /**
   * One layer's statistics from the wire.
   *
   * @throws IllegalArgumentException when they are inconsistent ({@link BatchNormStatistics#of})
   */
  public static BatchNormStatistics fromProto(BatchNormLayerStatistics p) {
    return BatchNormStatistics.of(
        p.getCount(),
        p.getMeanList().stream().mapToDouble(Double::doubleValue).toArray(),
        p.getM2List().stream().mapToDouble(Double::doubleValue).toArray());
  }
}
