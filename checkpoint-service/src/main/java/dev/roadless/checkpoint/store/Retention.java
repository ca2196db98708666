package dev.roadless.checkpoint.store;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * Which checkpoints of one run and kind to keep: the {@code keepLast} newest (by step, then commit
 * time) and, for eval checkpoints, the best one by a metric. {@code keepLast = 0} keeps everything.
 *
 * @param keepLast newest checkpoints to keep per run and kind; 0: no retention
 * @param best the metric whose best checkpoint is kept as well; {@link BestMetric#NONE} for none
 */
public record Retention(int keepLast, BestMetric best) {
  /** The metric of the keep-best rule. */
  public enum BestMetric {
    /** No keep-best rule. */
    NONE(null, false),
    /** Hold-out accuracy at x with the recomputed statistics; higher is better. */
    ACCURACY(
        m -> m.recomputedMetrics() == null ? Double.NaN : m.recomputedMetrics().accuracy(), true),
    /** Hold-out loss at x with the recomputed statistics; lower is better. */
    LOSS(m -> m.recomputedMetrics() == null ? Double.NaN : m.recomputedMetrics().loss(), false),
    /** The caller's score from SaveCheckpointRequest.metric; higher is better. */
    METRIC(m -> m.metric() == null ? Double.NaN : m.metric(), true);

    private final ToDoubleFunction<Manifest> value;
    private final boolean higherIsBetter;

    BestMetric(ToDoubleFunction<Manifest> value, boolean higherIsBetter) {
      this.value = value;
      this.higherIsBetter = higherIsBetter;
    }

    /** Parses a config value: empty or none, accuracy, loss, metric. */
    public static BestMetric parse(String s) {
      String v = s == null ? "" : s.trim().toUpperCase(Locale.ROOT);
      if (v.isEmpty()) {
        return NONE;
      }
      try {
        return valueOf(v);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "keep-best-metric must be one of none, accuracy, loss, metric; got '" + s + "'");
      }
    }
  }

  public Retention {
    if (keepLast < 0) {
      throw new IllegalArgumentException("keep-last must be >= 0");
    }
  }

  /** Newest first: higher step, then later commit time, then name. */
  public static final Comparator<Manifest> NEWEST_FIRST =
      Comparator.comparingLong(Manifest::step)
          .thenComparing(Manifest::createTime)
          .thenComparing(Manifest::name)
          .reversed();

  /**
   * The checkpoints to delete among those of one run and one kind.
   *
   * @param sameRunAndKind every checkpoint of the run and kind, the one just saved included
   */
  public List<String> toDelete(List<Manifest> sameRunAndKind) {
    if (keepLast == 0) {
      return List.of();
    }
    List<Manifest> sorted = new ArrayList<>(sameRunAndKind);
    sorted.sort(NEWEST_FIRST);
    Set<String> keep = new HashSet<>();
    sorted.stream().limit(keepLast).forEach(m -> keep.add(m.name()));
    best(sorted).ifPresent(m -> keep.add(m.name()));
    return sorted.stream().map(Manifest::name).filter(n -> !keep.contains(n)).toList();
  }

  /**
   * Applies the policy after {@code saved} was committed: deletes the run's other checkpoints of
   * the same kind that fall outside it. The checkpoint just saved is always kept.
   *
   * @return the names deleted
   */
  public List<String> apply(CheckpointStore store, Manifest saved) {
    List<Manifest> same =
        store.list().stream()
            .filter(m -> m.runId().equals(saved.runId()) && m.kind().equals(saved.kind()))
            .toList();
    List<String> deleted = new ArrayList<>();
    for (String name : toDelete(same)) {
      if (!name.equals(saved.name()) && store.delete(name, true)) {
        deleted.add(name);
      }
    }
    return deleted;
  }

  /** The best checkpoint by the metric (newest wins ties); empty when none has the metric. */
  Optional<Manifest> best(List<Manifest> newestFirst) {
    if (best == BestMetric.NONE) {
      return Optional.empty();
    }
    Manifest winner = null;
    double winning = Double.NaN;
    for (Manifest m : newestFirst) {
      double v = best.value.applyAsDouble(m);
      if (Double.isNaN(v)) {
        continue;
      }
      if (winner == null || (best.higherIsBetter ? v > winning : v < winning)) {
        winner = m;
        winning = v;
      }
    }
    return Optional.ofNullable(winner);
  }
}
