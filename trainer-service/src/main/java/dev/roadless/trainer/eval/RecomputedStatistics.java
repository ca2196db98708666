package dev.roadless.trainer.eval;

import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormStatistics;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * BatchNorm statistics rebuilt at given weights, per BatchNorm module (network order).
 *
 * @param mode how they were made
 * @param batches batches forwarded
 * @param statistics per module: count, mean and M2 per channel. Exact for {@link
 *     StatisticsMode#PRECISE}; for EMA and CUMULATIVE, the estimate in that form (mean = running
 *     mean, M2 = running_var*(count-1), count = values each channel saw in these batches), so that
 *     replicas can still be combined with {@link BatchNormStatistics#merge}
 * @param buffers per module: PyTorch buffers to evaluate with
 */
public record RecomputedStatistics(
    StatisticsMode mode,
    int batches,
    Map<String, BatchNormStatistics> statistics,
    Map<String, BatchNormBuffers> buffers) {
  public RecomputedStatistics {
    statistics = Collections.unmodifiableMap(new LinkedHashMap<>(statistics));
    Map<String, BatchNormBuffers> copy = new LinkedHashMap<>();
    buffers.forEach((k, v) -> copy.put(k, v.copy()));
    buffers = Collections.unmodifiableMap(copy);
  }

  /** Copies of the buffers (the record's own stay untouched by callers). */
  @Override
  public Map<String, BatchNormBuffers> buffers() {
    Map<String, BatchNormBuffers> copy = new LinkedHashMap<>();
    buffers.forEach((k, v) -> copy.put(k, v.copy()));
    return copy;
  }
}
